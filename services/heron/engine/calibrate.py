"""INT8 calibration on CPU: images → per-tensor ranges → TensorRT calibration cache
(`calibration.bin`) + Q/DQ models for TensorRT and for ONNX Runtime on CPU.

One pass over the images fills a magnitude histogram per activation (heron.engine.histograms);
the method (entropy, percentile, minmax) picks each tensor's amax from it; `auto` scores
candidate methods on held-out select images and keeps the best (heron.engine.search). Both
Q/DQ variants and the TensorRT cache are made from those amax values, so they agree tensor by
tensor. The TensorRT Q/DQ model may leave a few sensitive layers in float (`keep_fp`): `auto`
measures every layer's sensitivity (heron.engine.sensitivity) and keeps the worst few; the
cache still covers every activation, for TensorRT's implicit-quantisation path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from heron.core.int8.calib_cache import Algorithm, CalibrationCache
from heron.core.int8.qdq import activation_tensors
from heron.core.outputs import staged_folder
from heron.engine.errors import CalibrationError
from heron.engine.images import image_files, load_batch
from heron.engine.model_info import ModelInfo, load_onnx, read_model_info
from heron.engine.options import CalibrationOptions, Method
from heron.engine.search import FALLBACK, Recipe

if TYPE_CHECKING:
    import numpy as np

    from heron.engine.histograms import HistogramCollector
    from heron.engine.search import SearchReport
    from heron.engine.sensitivity import SensitivityReport

CACHE_FILE = "calibration.bin"
RANGES_FILE = "ranges.json"  # ONNX Runtime's calibration cache (JSON) of the same ranges
QDQ_FILE = "model.int8.qdq.onnx"  # symmetric, for TensorRT
CPU_FILE = "model.int8.u8s8.onnx"  # uint8 activations, for ONNX Runtime on CPU
OUTPUT_FILES = (CACHE_FILE, RANGES_FILE, QDQ_FILE, CPU_FILE)  # what OUTPUT receives


# The TensorRT calibrator whose name heads the cache. TensorRT has no percentile calibrator;
# its legacy calibrator is the quantile-based one.
TRT_ALGORITHM = {
    Method.ENTROPY: Algorithm.ENTROPY2,
    Method.PERCENTILE: Algorithm.LEGACY,
    Method.MINMAX: Algorithm.MINMAX,
}


# `auto` keeps a layer only when leaving it float removes at least this share of the all-INT8
# model's output error: below it, the layer is not why INT8 loses accuracy. On the facemask
# model the top three layers removed 6.3, 3.7 and 2.5 % and, kept float, the whole 1.05-point
# mAP loss; the next removed ≤ 1.4 % (docs/benchmarks/int8.md).
MIN_RECOVERED = 0.02


@dataclass(frozen=True)
class CalibrationResult:
    cache: Path
    ranges: Path
    qdq_model: Path
    cpu_model: Path
    images: int
    batches: int
    tensors: int
    seconds: float  # all of it: histograms, the search, both models
    recipe: Recipe  # the method used: the one asked for, or the one `auto` chose
    kept_float: tuple[str, ...]  # nodes the TensorRT Q/DQ model leaves unquantised
    sensitivity: SensitivityReport | None  # with keep_fp auto
    search: SearchReport | None  # with method auto and select images
    histogram_seconds: float  # the pass over the calibration images
    image_paths: tuple[Path, ...]  # the calibration images, in the order used
    histograms: HistogramCollector  # for reports that score other recipes of the same pass

    @property
    def method(self) -> Method:
        return self.recipe.method


def collect_histograms(
    model: Path,
    info: ModelInfo,
    batches: Sequence[Sequence[Path]],
    on_batch: Callable[[int, int], None] | None = None,
) -> HistogramCollector:
    """Run the model with every float activation as an output; histogram each, batch by batch.

    The next batch's images are decoded on a second thread while this one runs: OpenCV's
    decode and resize leave the GIL, as do ONNX Runtime and the histogram loop.
    """
    from concurrent.futures import ThreadPoolExecutor

    import onnx
    import onnxruntime as ort

    from heron.engine.histograms import HistogramCollector, NonFiniteError

    proto = load_onnx(model)
    tensors = activation_tensors(proto)
    outputs = {o.name for o in proto.graph.output}
    extra = [n for n in tensors if n not in outputs and n != info.input.name]
    proto.graph.output.extend(
        onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in extra
    )
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    collector = HistogramCollector()

    def decode(batch: Sequence[Path]) -> np.ndarray:
        return load_batch(batch, info.width, info.height)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="heron-decode") as decoder:
        upcoming = [decoder.submit(decode, batches[0])] if batches else []
        for index, batch in enumerate(batches):
            images = upcoming.pop().result()
            if index + 1 < len(batches):
                upcoming.append(decoder.submit(decode, batches[index + 1]))
            outputs = session.run(names, {info.input.name: images})
            try:
                collector.add([(info.input.name, images), *zip(names, outputs, strict=True)])
            except NonFiniteError as e:
                shown = ", ".join(p.name for p in batch)
                raise CalibrationError(f"{model} on {shown}: {e}") from None
            # The batch's activations (~4 GB at 8 × 960×544) go before the next run allocates.
            del outputs
            if on_batch is not None:
                on_batch(index + 1, len(batches))
    return collector


def spread_over(batches: Sequence[Sequence[Path]], count: int) -> list[Path]:
    """`count` images evenly spaced over all batches (all of them when there are fewer)."""
    paths = [p for batch in batches for p in batch]
    if count >= len(paths):
        return paths
    return [paths[(i * len(paths)) // count] for i in range(count)]


def _keep_float(
    model: Path,
    options: CalibrationOptions,
    quantise: Callable[[Path, Sequence[str]], Path],
    feeds: Callable[[], dict[str, np.ndarray]],
) -> tuple[tuple[str, ...], SensitivityReport | None]:
    """The layers the TensorRT Q/DQ model leaves float; `feeds` loads the images `auto`
    measures on, only when it runs."""
    from heron.engine.sensitivity import analyse, compute_layers

    if options.keep_fp == "none":
        return (), None
    if options.keep_fp == "auto":
        if options.keep_fp_max == 0:
            return (), None
        report = analyse(model, feeds(), quantise)
        return report.choose(options.keep_fp_max, MIN_RECOVERED), report
    names = {n for n, _ in compute_layers(model)}
    unknown = [n for n in options.keep_fp if n not in names]
    if unknown:
        raise CalibrationError(
            f"keep_fp: {unknown} are not Conv/Gemm/MatMul nodes of {model} "
            f"(e.g. {sorted(names)[:3]})"
        )
    return options.keep_fp, None


def _refuse_quantised(model: Path) -> None:
    """A Q/DQ model carries its ranges already; quantising it again would fail deep inside
    ONNX Runtime's quantiser."""
    from heron.core.int8.qdq import has_qdq

    if has_qdq(load_onnx(model)):
        raise CalibrationError(
            f"{model}: already INT8 (it holds QuantizeLinear/DequantizeLinear nodes: a QAT "
            "export or an earlier calibration's output), so there is nothing to calibrate; "
            "build it with `heron build-engine` or run it as it is"
        )


def calibration_batches(options: CalibrationOptions) -> list[list[Path]]:
    """The batches calibration runs: the first images of the folder by name, in full batches."""
    paths = image_files(options.images)
    size = options.batch_size
    count = len(paths) // size
    if options.batches is not None:
        count = min(options.batches, count)
    if count == 0:
        raise CalibrationError(
            f"{options.images}: {len(paths)} images, fewer than one batch of {size}"
        )
    return [paths[i * size : (i + 1) * size] for i in range(count)]


def _recipe(options: CalibrationOptions) -> Recipe:
    if options.method is Method.AUTO:
        return FALLBACK
    if options.method is Method.PERCENTILE:
        return Recipe(options.method, options.percentile)
    return Recipe(options.method)


def quantise_recipe(
    model: Path,
    info: ModelInfo,
    collector: HistogramCollector,
    recipe: Recipe,
    folder: Path,
    *,
    note: str,
) -> tuple[Path, Path]:
    """The (TensorRT S8S8, ONNX Runtime U8S8) models of `recipe` in `folder`, all INT8."""
    from heron.core.int8.qdq import QdqVariant, quantize, save_ranges

    ranges = save_ranges(collector.ranges(recipe.amax(collector, info)), folder / RANGES_FILE)
    qdq = quantize(model, ranges, folder / QDQ_FILE, variant=QdqVariant.TENSORRT, note=note)
    cpu = quantize(model, ranges, folder / CPU_FILE, variant=QdqVariant.CPU, note=note)
    return qdq, cpu


def calibrate(
    model: Path,
    output: Path,
    options: CalibrationOptions,
    on_batch: Callable[[int, int], None] | None = None,
    *,
    on_stage: Callable[[str], None] = lambda _stage: None,
    on_candidate: Callable[[int, int, str], None] = lambda _done, _total, _text: None,
) -> CalibrationResult:
    """Write calibration.bin, ranges.json and both Q/DQ models into `output`.

    The caller checks that the calibration and select images are apart (heron.engine.pipeline
    does, with the gate's too)."""
    from heron.core.int8.qdq import QdqVariant, quantize, save_ranges
    from heron.engine.search import search

    started = time.perf_counter()
    info = read_model_info(model)
    _refuse_quantised(model)
    batches = calibration_batches(options)
    count, size = len(batches), options.batch_size
    collector = collect_histograms(model, info, batches, on_batch)
    histogram_seconds = time.perf_counter() - started

    def note(recipe: Recipe) -> str:
        return f"{recipe.label} calibration on {count * size} images of {options.images}"

    def quantise_both(recipe: Recipe, folder: Path) -> tuple[Path, Path]:
        return quantise_recipe(model, info, collector, recipe, folder, note=note(recipe))

    recipe, report = _recipe(options), None
    if options.method is Method.AUTO and options.select_data is not None:
        on_stage(f"choosing the method on the select images {options.select_data}")
        report = search(
            model,
            quantise_both,
            options.select_data,
            budget_s=options.search_budget_s,
            on_candidate=on_candidate,
        )
        recipe = report.chosen
    amax = recipe.amax(collector, info)
    header = options.cache_calibrator or TRT_ALGORITHM[recipe.method]
    cache = CalibrationCache.from_amax(header, amax, options.trt_version)
    # Every file is written in a staging folder and renamed into OUTPUT at the end: a failed
    # calibration leaves an earlier one whole, never a new cache beside old Q/DQ models.
    with staged_folder(output) as staging:
        cache.write(staging / CACHE_FILE)
        ranges = save_ranges(collector.ranges(amax), staging / RANGES_FILE)

        def quantise(path: Path, keep: Sequence[str]) -> Path:
            return quantize(
                model, ranges, path, variant=QdqVariant.TENSORRT, note=note(recipe), keep_float=keep
            )

        def sensitivity_feeds() -> dict[str, np.ndarray]:
            spread = spread_over(batches, options.sensitivity_images)
            return {info.input.name: load_batch(spread, info.width, info.height)}

        if options.keep_fp == "auto":
            on_stage("measuring each layer's INT8 sensitivity (--keep-fp auto)")
        kept, sensitivity = _keep_float(model, options, quantise, sensitivity_feeds)
        quantise(staging / QDQ_FILE, kept)
        quantize(model, ranges, staging / CPU_FILE, variant=QdqVariant.CPU, note=note(recipe))
    return CalibrationResult(
        cache=output / CACHE_FILE,
        ranges=output / RANGES_FILE,
        qdq_model=output / QDQ_FILE,
        cpu_model=output / CPU_FILE,
        images=count * size,
        batches=count,
        tensors=len(cache.scales),
        seconds=time.perf_counter() - started,
        recipe=recipe,
        kept_float=kept,
        sensitivity=sensitivity,
        search=report,
        histogram_seconds=histogram_seconds,
        image_paths=tuple(p for batch in batches for p in batch),
        histograms=collector,
    )
