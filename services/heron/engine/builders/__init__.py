"""The two TensorRT flavours behind heron.engine.build: `tensorrt` (builds on its GPU) and
`tensorrt_rtx` (ahead-of-time builds on CPU for SM 7.5–12.1). Each is imported only when
asked for: neither package need be installed for the other."""

from __future__ import annotations

from heron.engine.builders.base import Builder
from heron.engine.plan_meta import Flavour


def get_builder(name: Flavour) -> Builder:
    if name == "tensorrt":
        from heron.engine.builders.tensorrt import TensorRTBuilder

        return TensorRTBuilder()
    from heron.engine.builders.tensorrt_rtx import TensorRTRtxBuilder

    return TensorRTRtxBuilder()
