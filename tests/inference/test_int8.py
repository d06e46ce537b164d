"""network-mode on the CPU backend: INT8 from a TensorRT calibration cache, FP16 as FP32."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from heron.core.config.diagnostics import ConfigError
from heron.core.config.nvinfer import read_nvinfer
from heron.core.config.nvinfer_models import NvInferConfig
from heron.core.int8.calib_cache import Algorithm, CalibrationCache
from heron.core.plan.settings.inference import OnnxRuntimeSettings
from heron.inference.backends import build_backend
from heron.inference.backends.onnx_runtime import OnnxRuntimeBackend
from heron.inference.errors import ModelMismatchError

from tests.inference.conftest import NET_H, NET_W, ExportedDetector, write_nvinfer
from tests.inference.detector import BBOX_NAME, COV_NAME

CALIB = "calibration.bin"


def images(n: int, seed: int) -> np.ndarray:
    """Smooth random images in [0, 1] (what the detector's preprocessing feeds it)."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((n, 3, NET_H // 8, NET_W // 8), dtype=np.float32)
    return np.ascontiguousarray(coarse.repeat(8, axis=2).repeat(8, axis=3))


def calibrate(onnx_file: Path, path: Path) -> Path:
    """A TensorRT EntropyCalibration2-style cache: amax = max |x| of every activation over a
    few images (what `heron calibrate --method minmax` writes), in TensorRT's text form."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(onnx_file))
    names = [o for node in model.graph.node for o in node.output if o]
    known = {o.name for o in model.graph.output}
    model.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names if n not in known)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    batch = images(8, seed=0)
    outputs = session.run(None, {"input_1": batch})
    amax = {"input_1": float(np.abs(batch).max())}
    for out, value in zip(session.get_outputs(), outputs, strict=True):
        if np.asarray(value).dtype == np.float32:
            amax[out.name] = float(np.abs(value).max())
    return CalibrationCache.from_amax(Algorithm.ENTROPY2, amax).write(path)


@pytest.fixture
def model(tmp_path: Path, detector: ExportedDetector) -> Path:
    """The test detector copied into this test's folder (the INT8 model is written beside it)."""
    return Path(shutil.copy(detector.onnx, tmp_path / "detector.onnx"))


def nvinfer(folder: Path, onnx_file: Path, mode: int, calib: Path | None = None) -> NvInferConfig:
    extra = f"network-mode={mode}\n" + (f"int8-calib-file={calib}\n" if calib else "")
    config, _ = read_nvinfer(write_nvinfer(folder, onnx_file, extra=extra))
    return config


def test_int8_runs_the_calibrated_model_close_to_fp32(model: Path, tmp_path: Path) -> None:
    import onnx

    calib = calibrate(model, tmp_path / CALIB)
    fp32 = build_backend(OnnxRuntimeSettings(), nvinfer(tmp_path, model, 0))
    int8 = build_backend(OnnxRuntimeSettings(), nvinfer(tmp_path, model, 1, calib))

    batch = images(4, seed=1)
    want, got = fp32.infer(batch), int8.infer(batch)

    [made] = tmp_path.glob("detector.int8-*.onnx")
    ops = {n.op_type for n in onnx.load(str(made)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert isinstance(int8, OnnxRuntimeBackend) and int8.precision.startswith("int8")
    assert int8.model_info().output_names == fp32.model_info().output_names
    # Coverage is a sigmoid in [0, 1]; boxes are in grid units. INT8 moves both a little.
    np.testing.assert_allclose(got[COV_NAME], want[COV_NAME], atol=0.03)
    bbox_range = float(np.abs(want[BBOX_NAME]).max())
    assert float(np.abs(got[BBOX_NAME] - want[BBOX_NAME]).max()) < 0.05 * bbox_range
    assert not np.array_equal(got[COV_NAME], want[COV_NAME])  # really quantised


def test_the_quantised_model_keeps_the_source_metadata(model: Path, tmp_path: Path) -> None:
    calib = calibrate(model, tmp_path / CALIB)
    int8 = build_backend(OnnxRuntimeSettings(), nvinfer(tmp_path, model, 1, calib))

    metadata = int8.model_info().metadata
    source = OnnxRuntimeBackend(model).model_info().metadata
    assert {k: metadata[k] for k in source} == source
    assert "calibration.bin" in metadata["heron.quantization"]


def test_the_quantised_model_is_made_once_per_model_and_cache(
    model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    calib = calibrate(model, tmp_path / CALIB)
    config = nvinfer(tmp_path, model, 1, calib)
    caplog.set_level(logging.INFO, logger="heron.inference.backends.ort_precision")

    build_backend(OnnxRuntimeSettings(), config)
    [first] = tmp_path.glob("detector.int8-*.onnx")
    stamp = first.stat().st_mtime_ns
    build_backend(OnnxRuntimeSettings(), config)

    assert first.stat().st_mtime_ns == stamp
    assert ["wrote" in m for m in caplog.messages].count(True) == 1
    assert any(m.startswith("network-mode=1 (INT8): reusing") for m in caplog.messages)
    # Another cache: another key, another model.
    text = calib.read_text().splitlines()
    calib.write_text("\n".join([text[0], *text[2:], text[1]]) + "\n")  # same scales, reordered
    build_backend(OnnxRuntimeSettings(), config)
    assert len(list(tmp_path.glob("detector.int8-*.onnx"))) == 2


def test_the_quantised_model_goes_to_the_configured_folder(model: Path, tmp_path: Path) -> None:
    calib = calibrate(model, tmp_path / CALIB)
    cache_dir = tmp_path / "int8-models"

    build_backend(OnnxRuntimeSettings(int8_cache_dir=cache_dir), nvinfer(tmp_path, model, 1, calib))

    assert len(list(cache_dir.glob("detector.int8-*.onnx"))) == 1
    assert not list(tmp_path.glob("detector.int8-*.onnx"))


@pytest.mark.parametrize(
    ("line", "text", "message"),
    [
        (2, "input_1 3c010204", "expected 'tensor: <8 hex digits>'"),
        (3, "conv: 12", "expected 8 hex digits, got '12'"),
        (1, "TRT-8601-Magic", "unknown calibrator 'Magic'"),
    ],
)
def test_a_malformed_cache_is_refused_naming_the_file_and_line(
    model: Path, tmp_path: Path, line: int, text: str, message: str
) -> None:
    lines = ["TRT-100300-EntropyCalibration2", "input_1: 3c010204", "conv: 3c010204"]
    calib = tmp_path / CALIB
    calib.write_text("\n".join(lines) + "\n")
    config = nvinfer(tmp_path, model, 1, calib)
    lines[line - 1] = text
    calib.write_text("\n".join(lines) + "\n")  # broken after the config was read

    with pytest.raises(ModelMismatchError, match=message) as err:
        build_backend(OnnxRuntimeSettings(), config)

    assert f"int8-calib-file {calib}:{line}: " in str(err.value)
    # The config's loader (heron config check, heron run) refuses it the same way, first.
    with pytest.raises(ConfigError, match=f"{calib}:{line}: .*{re.escape(message)}"):
        nvinfer(tmp_path, model, 1, calib)


def test_a_cache_of_another_model_is_refused(model: Path, tmp_path: Path) -> None:
    CalibrationCache.from_amax(Algorithm.ENTROPY2, {"input_1": 1.0}).write(tmp_path / CALIB)
    config = nvinfer(tmp_path, model, 1, tmp_path / CALIB)
    calib = CalibrationCache.from_amax(Algorithm.ENTROPY2, {"data": 1.0, "fc7": 3.0})
    calib.write(tmp_path / CALIB)  # another model's, after the config was read

    with pytest.raises(ModelMismatchError, match="none of its 2 tensors"):
        build_backend(OnnxRuntimeSettings(), config)
    with pytest.raises(ConfigError, match=r"none of the 2 tensors .* is a tensor of onnx-file"):
        nvinfer(tmp_path, model, 1, tmp_path / CALIB)


def test_a_missing_cache_is_refused(model: Path, tmp_path: Path) -> None:
    config = nvinfer(tmp_path, model, 1, tmp_path / "gone.bin")

    with pytest.raises(ModelMismatchError, match="no such calibration cache"):
        build_backend(OnnxRuntimeSettings(), config)


@pytest.mark.parametrize(
    ("mode", "calib", "warning"),
    [
        (2, False, "network-mode=2 (FP16): ONNX Runtime on CPU has no fast FP16"),
        (1, False, "network-mode=1 (INT8) without int8-calib-file"),
        (0, True, None),
        (3, False, None),
    ],
)
def test_modes_that_run_fp32_on_cpu(
    model: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    *,
    mode: int,
    calib: bool,
    warning: str | None,
) -> None:
    cache = calibrate(model, tmp_path / CALIB) if calib else None
    fp32 = OnnxRuntimeBackend(model)

    backend = build_backend(OnnxRuntimeSettings(), nvinfer(tmp_path, model, mode, cache))

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    if warning is None:
        assert warnings == []
    else:  # one line, saying what was asked and what runs
        [line] = warnings
        assert line.startswith(warning) and "\n" not in line
    batch = images(1, seed=2)
    np.testing.assert_array_equal(backend.infer(batch)[COV_NAME], fp32.infer(batch)[COV_NAME])
    assert not list(tmp_path.glob("detector.int8-*.onnx"))
