"""What a TensorRT flavour supplies to the one build path (heron.engine.build)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from heron.core.int8.qdq import has_qdq
from heron.engine.model_info import ModelInfo
from heron.engine.options import BuildOptions
from heron.engine.plan_meta import Flavour


class Builder(Protocol):
    """A TensorRT flavour: what differs between `tensorrt` and `tensorrt_rtx`."""

    name: Flavour

    def load(self) -> Any:
        """The TensorRT module; BuilderUnavailableError saying how to install it."""

    def network_source(self, options: BuildOptions, info: ModelInfo, workdir: Path) -> Path:
        """The ONNX file to parse (e.g. converted to fp16 first)."""

    def configure(self, trt: Any, config: Any, profile: Any, options: BuildOptions) -> None:
        """Precision flags, calibrator, targets, timing cache."""

    def finish(self, trt: Any, config: Any, options: BuildOptions) -> None:
        """After a successful build (e.g. save the timing cache)."""

    def describe(self, trt: Any, options: BuildOptions) -> dict[str, Any]:
        """gpu_name / compute_capability or targets for the metadata."""


def file_has_qdq(onnx_path: Path) -> bool:
    """The ONNX file is explicitly quantised (reads the graph only, not external weights)."""
    import onnx

    return has_qdq(onnx.load(str(onnx_path), load_external_data=False))
