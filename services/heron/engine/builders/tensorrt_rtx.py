"""TensorRT-RTX: CPU-only ahead-of-time builds for consumer/workstation GPUs (SM 7.5–12.1).

It has no precision flags: precision comes from the ONNX types. fp16 = the model converted to
float16 (inputs/outputs kept float32, so clients and DeepStream feed the same tensors); int8 =
the explicit Q/DQ model from `heron calibrate` (implicit calibration caches do not exist here).
`pip install tensorrt-rtx-cu12==1.7.1.116`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from heron.engine.builders.base import file_has_qdq
from heron.engine.errors import BuildError, BuilderUnavailableError
from heron.engine.model_info import ModelInfo
from heron.engine.options import BuildOptions
from heron.engine.plan_meta import Flavour

PIN = "tensorrt-rtx-cu12==1.7.1.116"
TARGETS = ("sm75", "sm80", "sm86", "sm89", "sm120", "sm121")
DEFAULT_TARGETS = ("sm86", "sm89")


class TensorRTRtxBuilder:
    name: Flavour = "tensorrt_rtx"

    def load(self) -> Any:
        try:
            import tensorrt_rtx  # type: ignore[import-untyped,unused-ignore]
        except ImportError as e:
            raise BuilderUnavailableError(
                f"the tensorrt_rtx builder needs TensorRT-RTX: `pip install {PIN}` ({e})"
            ) from None
        return tensorrt_rtx

    def targets(self, options: BuildOptions) -> list[str]:
        targets = [t.lower() for t in options.targets] or list(DEFAULT_TARGETS)
        unknown = [t for t in targets if t not in TARGETS]
        if unknown:
            raise BuildError(
                f"--targets: {', '.join(unknown)} not supported by TensorRT-RTX; expected some of "
                f"{', '.join(TARGETS)} (datacenter GPUs such as SM90 need --builder tensorrt)"
            )
        return targets

    def network_source(self, options: BuildOptions, info: ModelInfo, workdir: Path) -> Path:
        qdq = file_has_qdq(options.onnx)
        if options.precision == "int8":
            if not qdq:
                raise BuildError(
                    f"{options.onnx}: int8 with tensorrt_rtx needs an explicitly quantised model "
                    "(model.int8.qdq.onnx from `heron calibrate`); a calibration cache alone "
                    "cannot be used by TensorRT-RTX"
                )
            return options.onnx
        if qdq:
            raise BuildError(
                f"{options.onnx}: has Q/DQ nodes, so it builds as int8, not {options.precision}"
            )
        if options.precision == "fp16":
            return to_fp16(options.onnx, workdir / "model.fp16.onnx")
        return options.onnx

    def configure(self, trt: Any, config: Any, profile: Any, options: BuildOptions) -> None:
        del profile
        targets = self.targets(options)
        config.num_compute_capabilities = len(targets)
        for i, target in enumerate(targets):
            config.set_compute_capability(getattr(trt.ComputeCapability, target.upper()), i)

    def finish(self, trt: Any, config: Any, options: BuildOptions) -> None:
        """Nothing to keep: the timing cache is a no-op in TensorRT-RTX."""

    def describe(self, trt: Any, options: BuildOptions) -> dict[str, Any]:
        return {"targets": self.targets(options)}


def to_fp16(source: Path, output: Path) -> Path:
    """float16 weights and compute, float32 inputs/outputs (ONNX Runtime's converter)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(source)), keep_io_types=True)
    onnx.save(model, str(output))
    return output
