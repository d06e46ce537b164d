"""What the service takes from the pipeline config, and the errors when it cannot."""

from __future__ import annotations

from pathlib import Path

import pytest
from heron.core.config.nvinfer import read_nvinfer
from heron.core.config.pipeline_file import load_pipeline
from heron.core.plan.settings.inference import (
    InferenceSettings,
    OnnxRuntimeSettings,
    TorchSettings,
    TritonSettings,
)
from heron.inference.backends import build_backend
from heron.inference.errors import ModelMismatchError
from heron.inference.pipeline import primary_detector, require_model

from tests.inference.conftest import ExportedDetector, write_nvinfer, write_pipeline


def test_primary_gie_overrides_apply(tmp_path: Path, detector: ExportedDetector) -> None:
    nvinfer = write_nvinfer(tmp_path, detector.onnx, extra="interval=3\nbatch-size=2")
    path = write_pipeline(tmp_path, nvinfer, padding=True)
    path.write_text(path.read_text() + "  interval: 1\n  batch_size: 8\n  gie_unique_id: 5\n")
    found = primary_detector(load_pipeline(path)[0], path)
    assert (found.interval, found.batch_size, found.unique_id) == (1, 8, 5)
    prop = found.nvinfer.property  # what the preprocessing, the gate and the head read
    assert (prop.interval, prop.batch_size, prop.gie_unique_id) == (1, 8, 5)


def test_pipeline_without_an_enabled_primary_gie(
    tmp_path: Path, detector: ExportedDetector
) -> None:
    path = write_pipeline(tmp_path, write_nvinfer(tmp_path, detector.onnx))
    path.write_text(
        path.read_text().replace("enable: true\n  config_file", "enable: false\n  config_file")
    )
    with pytest.raises(ModelMismatchError, match=r"\[primary-gie\] is missing or not enabled"):
        primary_detector(load_pipeline(path)[0], path)


def test_an_engine_needs_an_onnx_model_beside_it(tmp_path: Path) -> None:
    """ONNX Runtime cannot run a TensorRT engine: refused at start, naming where the engine was
    set, unless the settings name an ONNX model; Triton serves a model of its own."""
    (tmp_path / "model.engine").write_bytes(b"")
    nvinfer = tmp_path / "nvinfer.txt"
    nvinfer.write_text("[property]\nmodel-engine-file=model.engine\nnum-detected-classes=2\n")
    path = write_pipeline(tmp_path, nvinfer)
    pipeline, findings = load_pipeline(path)
    detector = primary_detector(pipeline, path, findings.items)

    with pytest.raises(ModelMismatchError) as caught:
        require_model(OnnxRuntimeSettings(), detector)

    assert str(caught.value).startswith(
        f"backend onnxruntime has no model to run: {nvinfer}:2: [property.model-engine-file] "
        f"model-engine-file '{tmp_path / 'model.engine'}' is a TensorRT engine"
    )
    require_model(OnnxRuntimeSettings(model_file=tmp_path / "m.onnx"), detector)
    require_model(TritonSettings(model_name="detector"), detector)


def test_backend_needs_a_model(tmp_path: Path) -> None:
    nvinfer = tmp_path / "engine_only.txt"
    (tmp_path / "model.engine").write_bytes(b"")
    nvinfer.write_text("[property]\nmodel-engine-file=model.engine\nnum-detected-classes=2\n")
    config, _ = read_nvinfer(nvinfer)
    with pytest.raises(ModelMismatchError, match="backend onnxruntime needs a model"):
        build_backend(OnnxRuntimeSettings(), config)
    with pytest.raises(ModelMismatchError, match="backend torch needs infer-dims"):
        build_backend(TorchSettings(model_file=tmp_path / "m.pt2"), config)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"input": "frames"}, "input=frames needs frame_streams"),
        ({"backend": {"kind": "tensorrt"}}, "tensorrt"),
        ({"backend": {"kind": "triton"}}, "model_name"),
        ({"retry_initial_s": 2, "retry_max_s": 1}, "retry_max_s"),
    ],
)
def test_bad_settings_are_refused(tmp_path: Path, fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        InferenceSettings(pipeline_config=tmp_path / "p.yaml", **fields)  # type: ignore[arg-type]
