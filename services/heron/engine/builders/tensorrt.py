"""Full TensorRT (datacenter and Jetson GPUs): builds on the GPU the plan is for.

Written against TensorRT's Python API (8.6 and 10.x): FP16/INT8 builder flags; INT8 from the
Q/DQ model (explicit) or from a calibration cache read by an IInt8Calibrator that returns no
batches (implicit); a calibration profile; a timing cache read and updated. Full TensorRT
cannot be installed on the machines Heron's CI runs on (../shared/NOTES.md), so this builder has
not been run there: it needs `pip install tensorrt` on a GPU node (or NVIDIA's container).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from heron.core.int8 import calib_cache
from heron.core.int8.calib_cache import Algorithm
from heron.engine.builders.base import file_has_qdq
from heron.engine.errors import BuildError, BuilderUnavailableError, CalibCacheError
from heron.engine.gpu import gpu_info
from heron.engine.model_info import ModelInfo
from heron.engine.options import BuildOptions
from heron.engine.plan_meta import Flavour


class TensorRTBuilder:
    name: Flavour = "tensorrt"

    def load(self) -> Any:
        try:
            import tensorrt  # type: ignore[import-not-found,unused-ignore]
        except ImportError as e:
            raise BuilderUnavailableError(
                "the tensorrt builder needs full TensorRT on a GPU node (`pip install tensorrt` "
                f"or NVIDIA's TensorRT container); use --builder tensorrt_rtx here ({e})"
            ) from None
        return tensorrt

    def network_source(self, options: BuildOptions, info: ModelInfo, workdir: Path) -> Path:
        del info, workdir
        if options.targets:
            raise BuildError(
                "--targets is for tensorrt_rtx; the tensorrt builder builds for the GPU it runs on"
            )
        if (
            options.precision == "int8"
            and not file_has_qdq(options.onnx)
            and not options.calib_cache
        ):
            raise BuildError(
                f"{options.onnx}: int8 needs the Q/DQ model or --calib-cache calibration.bin"
            )
        return options.onnx

    def configure(self, trt: Any, config: Any, profile: Any, options: BuildOptions) -> None:
        if options.precision in ("fp16", "int8"):
            config.set_flag(trt.BuilderFlag.FP16)  # int8: layers without int8 kernels use fp16
        if options.precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)
            if not file_has_qdq(options.onnx) and options.calib_cache is not None:
                config.int8_calibrator = cache_calibrator(trt, options.calib_cache)
                config.set_calibration_profile(profile)
        if options.timing_cache is not None:
            data = options.timing_cache.read_bytes() if options.timing_cache.is_file() else b""
            cache = config.create_timing_cache(data)
            config.set_timing_cache(cache, ignore_mismatch=False)

    def finish(self, trt: Any, config: Any, options: BuildOptions) -> None:
        if options.timing_cache is not None:
            cache = config.get_timing_cache()
            options.timing_cache.write_bytes(bytes(memoryview(cache.serialize())))

    def describe(self, trt: Any, options: BuildOptions) -> dict[str, Any]:
        name, capability = gpu_info()
        return {"gpu_name": name, "compute_capability": capability}


def cache_calibrator(trt: Any, path: Path) -> Any:
    """An IInt8Calibrator of the cache's algorithm that only reads the cache: no batches, so
    TensorRT must take every scale from it (a cache of another algorithm is refused here rather
    than silently ignored by TensorRT)."""
    try:
        cache = calib_cache.read(path)
    except calib_cache.CalibCacheError as e:  # the shared parser's error, as the engine's
        raise CalibCacheError(str(e)) from e
    base = {
        Algorithm.ENTROPY2: trt.IInt8EntropyCalibrator2,
        Algorithm.ENTROPY: trt.IInt8EntropyCalibrator,
        Algorithm.MINMAX: trt.IInt8MinMaxCalibrator,
        Algorithm.LEGACY: trt.IInt8LegacyCalibrator,
    }[cache.algorithm]
    text = cache.to_text().encode("ascii")

    class CacheCalibrator(base):  # type: ignore[misc,valid-type]
        def __init__(self) -> None:
            base.__init__(self)

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names: list[str]) -> None:
            return None  # no data: the cache is all there is

        def read_calibration_cache(self) -> bytes:
            return text

        def write_calibration_cache(self, cache: bytes) -> None:
            """TensorRT writes back what it read; the file stays as `heron calibrate` wrote it."""

        # IInt8LegacyCalibrator's extra methods; unused when the cache covers every tensor.
        def get_quantile(self) -> float:
            return 0.99999

        def get_regression_cutoff(self) -> float:
            return 1.0

        def read_histogram_cache(self, length: int) -> None:
            return None

        def write_histogram_cache(self, data: bytes, length: int) -> None:
            """No histograms: the scales come from the cache."""

    return CacheCalibrator()
