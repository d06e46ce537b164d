"""Engine builds with TensorRT-RTX (CPU-only, ahead of time): FP32, FP16 and INT8 Q/DQ engines
of the detector, their metadata, and clear refusals for models TensorRT cannot take."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import onnx
import pytest
from heron.engine.build import _logger, build_plan, parse_network
from heron.engine.builders import get_builder
from heron.engine.calibrate import CalibrationResult
from heron.engine.errors import BuildError, BuilderUnavailableError, ModelFileError, ParseError
from heron.engine.model_info import sha256_file
from heron.engine.options import BuildOptions
from onnx import TensorProto, helper
from pydantic import ValidationError


@pytest.mark.shared_data
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_rtx_builds_each_precision(
    precision: str, trt_rtx: ModuleType, detector_onnx: Path, calibrated: CalibrationResult
) -> None:
    source = calibrated.qdq_model if precision == "int8" else detector_onnx
    options = BuildOptions(
        onnx=source,
        precision=precision,
        targets=["sm86", "SM120"],
        calib_cache=calibrated.cache if precision == "int8" else None,
        min_batch=1,
        opt_batch=2,
        max_batch=8,
    )
    built = build_plan(options, get_builder("tensorrt_rtx"))
    meta = built.metadata
    assert len(built.plan) == meta.plan_bytes > 100_000
    assert (meta.flavour, meta.trt_version, meta.precision) == (
        "tensorrt_rtx",
        trt_rtx.__version__,
        precision,
    )
    assert meta.targets == ["sm86", "sm120"]
    assert meta.compute_capabilities() == ["8.6", "12.0"]
    assert meta.inputs[0].name == "input_1"
    assert (meta.inputs[0].min, meta.inputs[0].max) == ([1, 3, 128, 224], [8, 3, 128, 224])
    assert meta.onnx_sha256 == sha256_file(source)
    assert meta.calibration_sha256 == (
        sha256_file(calibrated.cache) if precision == "int8" else None
    )


@pytest.mark.parametrize(
    ("precision", "use_qdq", "message"),
    [
        ("int8", False, "needs an explicitly quantised model"),
        ("fp16", True, "has Q/DQ nodes, so it builds as int8"),
    ],
)
@pytest.mark.shared_data
def test_rtx_refuses_the_wrong_model_for_the_precision(  # noqa: PLR0917 -- parametrized
    precision: str,
    use_qdq: bool,
    message: str,
    trt_rtx: ModuleType,
    detector_onnx: Path,
    calibrated: CalibrationResult,
) -> None:
    source = calibrated.qdq_model if use_qdq else detector_onnx
    options = BuildOptions(onnx=source, precision=precision)
    with pytest.raises(BuildError, match=message):
        build_plan(options, get_builder("tensorrt_rtx"))


@pytest.mark.parametrize("target", ["sm90", "sm61", "ampere"])
def test_rtx_refuses_unsupported_targets(
    target: str, trt_rtx: ModuleType, detector_onnx: Path
) -> None:
    options = BuildOptions(onnx=detector_onnx, targets=[target])
    with pytest.raises(BuildError, match=f"{target} not supported by TensorRT-RTX"):
        build_plan(options, get_builder("tensorrt_rtx"))


def _custom_op_model(path: Path) -> Path:
    x = helper.make_tensor_value_info("input_1", TensorProto.FLOAT, ["N", 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 8, 8])
    node = helper.make_node("FrobnicateOp", ["input_1"], ["y"], name="frob0", domain="com.x")
    graph = helper.make_graph([node], "g", [x], [y])
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.x", 1)]
    onnx.save(helper.make_model(graph, opset_imports=opsets), str(path))
    return path


def test_parse_failure_names_node_and_operator(trt_rtx: ModuleType, tmp_path: Path) -> None:
    options = BuildOptions(onnx=_custom_op_model(tmp_path / "custom.onnx"))
    with pytest.raises(ParseError, match=r"node 0 \(frob0, op FrobnicateOp\): .*Plugin not found"):
        build_plan(options, get_builder("tensorrt_rtx"))


@pytest.mark.parametrize("content", [b"\x08\x07", b"hello world" * 3])
def test_garbage_that_parses_to_an_empty_network_is_rejected(
    content: bytes, trt_rtx: ModuleType, tmp_path: Path
) -> None:
    path = tmp_path / "garbage.onnx"
    path.write_bytes(content)
    # build_plan refuses it earlier (onnx.checker); TensorRT's parser alone would accept it.
    with pytest.raises(ModelFileError, match=r"garbage\.onnx"):
        build_plan(BuildOptions(onnx=path), get_builder("tensorrt_rtx"))
    logger = _logger(trt_rtx)
    with pytest.raises(ParseError, match="parsed to an empty network"):
        parse_network(trt_rtx, trt_rtx.Builder(logger), logger, path)


def test_batches_must_be_ordered(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="min_batch ≤ opt_batch ≤ max_batch, got 1, 8, 4"):
        BuildOptions(onnx=tmp_path / "m.onnx", min_batch=1, opt_batch=8, max_batch=4)


@pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is not None, reason="full TensorRT is installed here"
)
def test_tensorrt_builder_without_tensorrt_says_how_to_get_it(detector_onnx: Path) -> None:
    with pytest.raises(BuilderUnavailableError, match="--builder tensorrt_rtx here"):
        build_plan(BuildOptions(onnx=detector_onnx, builder="tensorrt"), get_builder("tensorrt"))
