"""Calibration on real face images: the cache covers every activation, the Q/DQ models are the
forms TensorRT and ONNX Runtime want, and INT8 outputs stay close to FP32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from heron.core.int8 import calib_cache
from heron.core.int8.calib_cache import Algorithm
from heron.core.int8.qdq import QUANTIZATION_METADATA_KEY, activation_tensors, scoring_options
from heron.engine.calibrate import MIN_RECOVERED, CalibrationResult, calibrate
from heron.engine.errors import CalibrationError
from heron.engine.images import load_batch
from heron.engine.model_info import load_onnx
from heron.engine.options import CalibrationOptions, Method

from tests.engine.conftest import HEIGHT, WIDTH

pytestmark = pytest.mark.shared_data

# INT8 vs FP32 on 8 real images the calibration never saw, per output, relative to the FP32
# output's largest magnitude (amax, what the INT8 scale is made from): largest difference
# ≤ 4%, mean ≤ 1% (measured: ≤ 2.5% and ≤ 0.5%).
MAX_TOLERANCE, MEAN_TOLERANCE = 0.04, 0.01


@pytest.mark.parametrize(
    ("method", "algorithm"),
    [
        (Method.ENTROPY, Algorithm.ENTROPY2),
        (Method.PERCENTILE, Algorithm.LEGACY),
        (Method.MINMAX, Algorithm.MINMAX),
    ],
)
def test_cache_covers_every_activation_tensor(
    method: Method, algorithm: Algorithm, detector_onnx: Path, calib_images: Path, tmp_path: Path
) -> None:
    options = CalibrationOptions(images=calib_images, batches=2, batch_size=4, method=method)
    result = calibrate(detector_onnx, tmp_path, options)
    cache = calib_cache.read(result.cache)
    assert cache.algorithm is algorithm
    activations = activation_tensors(load_onnx(detector_onnx))
    assert set(cache.scales) == set(activations)
    assert {"input_1", "output_cov/Sigmoid", "output_bbox/BiasAdd"} <= set(cache.scales)
    assert all(s > 0 for s in cache.scales.values())
    # The input is RGB / 255: its range is [0, 1], so amax 1 (entropy may clip a little).
    assert 0.8 <= cache.amax("input_1") <= 1.0 + 1e-6
    assert (result.images, result.batches) == (8, 2)


def _run(model: Path, images: np.ndarray) -> list[np.ndarray]:
    import onnxruntime as ort

    options = scoring_options(model)  # TensorRT's form as TensorRT computes it, on any CPU
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    return [np.asarray(o) for o in session.run(None, {"input_1": images})]


@pytest.fixture(scope="module")
def calibrated_minmax(
    detector_onnx: Path, calib_images: Path, tmp_path_factory: pytest.TempPathFactory
) -> CalibrationResult:
    """Minmax: the random-weight test detector's wide, flat logits are what entropy and
    percentile calibration clip on purpose (real models: mAP in docs/benchmarks/int8.md)."""
    options = CalibrationOptions(
        images=calib_images, batches=4, batch_size=4, method=Method.MINMAX, keep_fp="none"
    )
    return calibrate(detector_onnx, tmp_path_factory.mktemp("minmax"), options)


@pytest.mark.parametrize("variant", ["qdq_model", "cpu_model"])
def test_int8_models_stay_close_to_fp32_on_real_images(
    variant: str,
    calibrated_minmax: CalibrationResult,
    detector_onnx: Path,
    check_images: list[Path],
) -> None:
    images = load_batch(check_images, WIDTH, HEIGHT)
    reference = _run(detector_onnx, images)
    quantised = _run(getattr(calibrated_minmax, variant), images)
    for fp32, int8 in zip(reference, quantised, strict=True):
        assert int8.shape == fp32.shape
        amax = float(np.abs(fp32).max())
        error = np.abs(int8 - fp32)
        assert float(error.max()) <= MAX_TOLERANCE * amax
        assert float(error.mean()) <= MEAN_TOLERANCE * amax


def _initializers(model: Path) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    proto = load_onnx(model)
    return {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}


def test_tensorrt_variant_is_symmetric_per_channel_without_int32_bias(
    calibrated: CalibrationResult,
) -> None:
    proto = load_onnx(calibrated.qdq_model)
    weights = _initializers(calibrated.qdq_model)
    quantize = [n for n in proto.graph.node if n.op_type == "QuantizeLinear"]
    dequantize = [n for n in proto.graph.node if n.op_type == "DequantizeLinear"]
    assert quantize and dequantize
    for node in dequantize:
        zero_point = weights.get(node.input[2]) if len(node.input) > 2 else None
        if zero_point is not None:
            assert zero_point.dtype == np.int8  # no uint8 activations, no int32 bias
            assert not zero_point.any()  # symmetric: zero points are 0
    per_channel = [n for n in dequantize if weights.get(n.input[1], np.zeros(1)).size > 1]
    assert per_channel, "expected per-channel weight scales"
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta[QUANTIZATION_METADATA_KEY].startswith("tensorrt; entropy calibration on 16")


def test_cpu_variant_has_uint8_activations(calibrated: CalibrationResult) -> None:
    weights = _initializers(calibrated.cpu_model)
    proto = load_onnx(calibrated.cpu_model)
    zero_points = {
        str(weights[n.input[2]].dtype)
        for n in proto.graph.node
        if n.op_type == "QuantizeLinear" and len(n.input) > 2 and n.input[2] in weights
    }
    assert "uint8" in zero_points


def test_too_few_images_and_bad_images(detector_onnx: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CalibrationError, match="no images"):
        calibrate(detector_onnx, tmp_path / "out", CalibrationOptions(images=empty))
    with pytest.raises(CalibrationError, match="no such image folder"):
        calibrate(detector_onnx, tmp_path / "out", CalibrationOptions(images=tmp_path / "nope"))
    (empty / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(CalibrationError, match="fewer than one batch of 8"):
        calibrate(detector_onnx, tmp_path / "out", CalibrationOptions(images=empty))
    options = CalibrationOptions(images=empty, batch_size=1, batches=1)
    with pytest.raises(CalibrationError, match=r"broken\.jpg: OpenCV cannot decode"):
        calibrate(detector_onnx, tmp_path / "out", options)


def _float_convs(model: Path) -> set[str]:
    """Conv nodes whose weights are plain float initializers (no DequantizeLinear)."""
    proto = load_onnx(model)
    initializers = {i.name for i in proto.graph.initializer}
    return {n.name for n in proto.graph.node if n.op_type == "Conv" and n.input[1] in initializers}


def _conv_names(model: Path) -> list[str]:
    return [n.name for n in load_onnx(model).graph.node if n.op_type == "Conv"]


def test_keep_fp_leaves_named_layers_float_and_the_cache_whole(
    detector_onnx: Path, calib_images: Path, tmp_path: Path
) -> None:
    first, *_, last = _conv_names(detector_onnx)
    options = CalibrationOptions(
        images=calib_images, batches=1, batch_size=4, keep_fp=f"{first}, {last}"
    )
    result = calibrate(detector_onnx, tmp_path, options)
    assert result.kept_float == (first, last)
    assert _float_convs(result.qdq_model) == {first, last}
    assert _float_convs(result.cpu_model) == set()  # the CPU model stays all-INT8 (speed)
    cache = calib_cache.read(result.cache)
    assert set(cache.scales) == set(activation_tensors(load_onnx(detector_onnx)))
    meta = {p.key: p.value for p in load_onnx(result.qdq_model).metadata_props}
    assert meta[QUANTIZATION_METADATA_KEY].endswith(f"float: {first}, {last}")


def test_keep_fp_none_quantises_every_layer(
    detector_onnx: Path, calib_images: Path, tmp_path: Path
) -> None:
    options = CalibrationOptions(images=calib_images, batches=1, batch_size=4, keep_fp="none")
    result = calibrate(detector_onnx, tmp_path, options)
    assert result.kept_float == () and result.sensitivity is None
    assert _float_convs(result.qdq_model) == set()


def test_keep_fp_auto_ranks_every_layer(calibrated: CalibrationResult, detector_onnx: Path) -> None:
    report = calibrated.sensitivity
    assert report is not None and report.baseline > 0
    assert {s.node for s in report.layers} == set(_conv_names(detector_onnx))
    errors = [s.error for s in report.layers]
    assert errors == sorted(errors)  # most sensitive first
    assert len(calibrated.kept_float) <= 3
    assert calibrated.kept_float == report.choose(3, MIN_RECOVERED)
    assert _float_convs(calibrated.qdq_model) == set(calibrated.kept_float)


def test_keep_fp_unknown_node_is_refused(
    detector_onnx: Path, calib_images: Path, tmp_path: Path
) -> None:
    options = CalibrationOptions(images=calib_images, batches=1, batch_size=4, keep_fp="/nope/Conv")
    with pytest.raises(CalibrationError, match=r"\['/nope/Conv'\] are not Conv/Gemm/MatMul"):
        calibrate(detector_onnx, tmp_path, options)


def test_a_malformed_cache_is_an_engine_error_naming_the_line(tmp_path: Path) -> None:
    """The TensorRT builder reads caches with heron.core.int8; its CLI catches EngineError."""
    from heron.engine.builders.tensorrt import cache_calibrator
    from heron.engine.errors import CalibCacheError

    bad = tmp_path / "calibration.bin"
    bad.write_text("TRT-8601-EntropyCalibration2\ninput_1: not-hex\n")
    with pytest.raises(CalibCacheError, match=r"calibration.bin:2"):
        cache_calibrator(object(), bad)


def test_sensitivity_images_spread_over_every_batch() -> None:
    from heron.engine.calibrate import spread_over

    batches = [[Path(f"b{b}_{i}.jpg") for i in range(8)] for b in range(5)]
    picked = spread_over(batches, 10)
    assert len(picked) == 10 and len(set(picked)) == 10
    assert {p.name.split("_")[0] for p in picked} == {"b0", "b1", "b2", "b3", "b4"}
    assert spread_over(batches[:1], 16) == batches[0]  # fewer images than asked: all of them


def test_cache_header_can_name_deepstreams_calibrator(
    detector_onnx: Path, calib_images: Path, tmp_path: Path
) -> None:
    """A percentile cache for nvinfer: EntropyCalibration2 in the header, the same scales."""
    base = {"images": calib_images, "batches": 1, "batch_size": 4, "keep_fp": "none"}
    own = CalibrationOptions.model_validate({**base, "method": "percentile"})
    for_nvinfer = CalibrationOptions.model_validate(
        {**base, "method": "percentile", "cache_calibrator": "EntropyCalibration2"}
    )
    a = calib_cache.read(calibrate(detector_onnx, tmp_path / "own", own).cache)
    b = calib_cache.read(calibrate(detector_onnx, tmp_path / "nvinfer", for_nvinfer).cache)
    assert a.algorithm is Algorithm.LEGACY and b.algorithm is Algorithm.ENTROPY2
    assert dict(a.scales) == dict(b.scales)
    with pytest.raises(ValueError, match="cache_calibrator"):
        CalibrationOptions.model_validate({**base, "cache_calibrator": "Percentile"})


def test_an_already_quantised_model_is_refused_before_any_image_is_read(
    calibrated: CalibrationResult, tmp_path: Path
) -> None:
    options = CalibrationOptions(images=tmp_path / "never-read")
    with pytest.raises(
        CalibrationError, match=r"model\.int8\.qdq\.onnx: already INT8 .*build-engine"
    ):
        calibrate(calibrated.qdq_model, tmp_path / "out", options)


def test_only_the_int8_activation_form_is_scored_as_float_qdq(
    calibrated: CalibrationResult, detector_onnx: Path
) -> None:
    from heron.core.int8.qdq import int8_activations

    assert int8_activations(calibrated.qdq_model)  # TensorRT's form
    assert not int8_activations(calibrated.cpu_model)  # ONNX Runtime's own int8 kernels
    assert not int8_activations(detector_onnx)
