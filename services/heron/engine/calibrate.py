"""INT8 calibration on CPU with ONNX Runtime: images → per-tensor ranges → TensorRT calibration
cache (`calibration.bin`) + Q/DQ models for TensorRT and for ONNX Runtime on CPU.

One calibration pass (ONNX Runtime's calibrators, fed batch by batch so histograms stay small)
gives ranges saved as ONNX Runtime's JSON cache; both Q/DQ variants and the TensorRT cache are
made from it, so they agree tensor by tensor.
"""

from __future__ import annotations

import io
import tempfile
import time
from collections.abc import Callable
from contextlib import redirect_stdout
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from heron.engine.calib_cache import DEFAULT_TRT_VERSION, Algorithm, CalibrationCache
from heron.engine.errors import CalibrationError
from heron.engine.images import image_files
from heron.engine.model_info import read_model_info

CACHE_FILE = "calibration.bin"
RANGES_FILE = "ranges.json"  # ONNX Runtime's own calibration cache (JSON)
QDQ_FILE = "model.int8.qdq.onnx"  # symmetric, for TensorRT
CPU_FILE = "model.int8.u8s8.onnx"  # uint8 activations, for ONNX Runtime on CPU


class Method(StrEnum):
    ENTROPY = "entropy"
    PERCENTILE = "percentile"
    MINMAX = "minmax"


# The TensorRT calibrator whose name heads the cache. TensorRT has no percentile calibrator;
# its legacy calibrator is the quantile-based one.
TRT_ALGORITHM = {
    Method.ENTROPY: Algorithm.ENTROPY2,
    Method.PERCENTILE: Algorithm.LEGACY,
    Method.MINMAX: Algorithm.MINMAX,
}


class CalibrationOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    images: Path = Field(description="Folder of calibration images (or a KITTI folder).")
    batches: int = Field(40, ge=1, description="Batches to calibrate on.")
    batch_size: int = Field(8, ge=1, le=256, description="Images per batch.")
    method: Method = Field(Method.ENTROPY, description="How ranges are chosen from activations.")
    trt_version: int = Field(
        DEFAULT_TRT_VERSION, ge=1, description="TensorRT version written in the cache header."
    )


@dataclass(frozen=True)
class CalibrationResult:
    cache: Path
    ranges: Path
    qdq_model: Path
    cpu_model: Path
    images: int
    batches: int
    tensors: int
    seconds: float


def _ort_method(method: Method) -> Any:
    from onnxruntime.quantization import CalibrationMethod

    return {
        Method.ENTROPY: CalibrationMethod.Entropy,
        Method.PERCENTILE: CalibrationMethod.Percentile,
        Method.MINMAX: CalibrationMethod.MinMax,
    }[method]


def collect_ranges(
    model: Path,
    reader: Any,
    method: Method,
    ranges_path: Path,
    on_batch: Callable[[int, int], None] | None = None,
) -> Any:
    """Run the calibrator one batch at a time; save and return ONNX Runtime's TensorsData."""
    from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data

    with tempfile.TemporaryDirectory(prefix="heron-calib-") as tmp:
        calibrator = create_calibrator(
            model,
            None,  # every float tensor of every node
            augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=_ort_method(method),
        )
        total = len(reader)
        for index in range(total):
            reader.set_range(index, index + 1)
            # ONNX Runtime's histogram calibrators print() their settings; stdout is ours.
            with redirect_stdout(io.StringIO()):
                calibrator.collect_data(reader)
            if on_batch is not None:
                on_batch(index + 1, total)
        with redirect_stdout(io.StringIO()):
            ranges = calibrator.compute_data()
    save_tensors_data(ranges, ranges_path)
    return ranges


def trt_cache(ranges: Any, method: Method, trt_version: int) -> CalibrationCache:
    """amax = max(|lowest|, |highest|) per tensor → TensorRT's scale amax / 127."""
    import numpy as np

    # MinMax gives 1-element arrays, the histogram methods scalars.
    amax = {
        name: float(np.abs(np.concatenate([np.ravel(v) for v in data.range_value])).max())
        for name, data in ranges.data.items()
    }
    return CalibrationCache.from_amax(TRT_ALGORITHM[method], amax, trt_version)


def calibrate(
    model: Path,
    output: Path,
    options: CalibrationOptions,
    on_batch: Callable[[int, int], None] | None = None,
) -> CalibrationResult:
    """Write calibration.bin, ranges.json and both Q/DQ models into `output`."""
    from heron.engine.calib_data import ImageBatchReader
    from heron.engine.qdq import QdqVariant, quantize

    started = time.perf_counter()
    info = read_model_info(model)
    paths = image_files(options.images)
    batches = min(options.batches, len(paths) // options.batch_size)
    if batches == 0:
        raise CalibrationError(
            f"{options.images}: {len(paths)} images, fewer than one batch of {options.batch_size}"
        )
    output.mkdir(parents=True, exist_ok=True)
    used = paths[: batches * options.batch_size]
    reader = ImageBatchReader(used, info.input.name, info.width, info.height, options.batch_size)
    ranges_path = output / RANGES_FILE
    ranges = collect_ranges(model, reader, options.method, ranges_path, on_batch)
    cache = trt_cache(ranges, options.method, options.trt_version)
    cache.write(output / CACHE_FILE)
    note = f"{options.method.value} calibration on {len(used)} images of {options.images}"
    method = _ort_method(options.method)
    qdq = quantize(
        model, ranges_path, output / QDQ_FILE, variant=QdqVariant.TENSORRT, method=method, note=note
    )
    cpu = quantize(
        model, ranges_path, output / CPU_FILE, variant=QdqVariant.CPU, method=method, note=note
    )
    return CalibrationResult(
        cache=output / CACHE_FILE,
        ranges=ranges_path,
        qdq_model=qdq,
        cpu_model=cpu,
        images=len(used),
        batches=batches,
        tensors=len(cache.scales),
        seconds=time.perf_counter() - started,
    )
