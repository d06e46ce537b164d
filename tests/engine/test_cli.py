"""`heron calibrate` / `heron build-engine` and the Job (`python -m heron.engine`) end to end,
with the accuracy gate on a detector exported by heron.training and a real KITTI folder."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from heron.engine import accuracy
from heron.engine.accuracy import ClassDelta, VariantReport, check_gate
from heron.engine.cli import app
from heron.engine.errors import AccuracyGateError
from heron.engine.service import main
from typer.testing import CliRunner

from tests.engine.conftest import CALIB_IMAGES

runner = CliRunner()


@pytest.fixture(scope="module")
def trained_layout_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """heron.training's DetectNet_v2 (random weights, 128×64 input) with its settings metadata,
    exported as heron.training.export does."""
    import onnx
    import torch
    from heron.core.model_metadata import SETTINGS_METADATA_KEY
    from heron.training.model import BBOX_NAME, COV_NAME, INPUT_NAME, DetectNetV2
    from heron.training.predict import settings_json

    from tests.training.conftest import tiny_settings

    settings = tiny_settings()
    torch.manual_seed(0)
    model = DetectNetV2(settings.model, len(settings.classes)).eval()
    path = tmp_path_factory.mktemp("trained") / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.rand(1, 3, 64, 128),),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[COV_NAME, BBOX_NAME],
            dynamic_axes={INPUT_NAME: {0: "b"}, COV_NAME: {0: "b"}, BBOX_NAME: {0: "b"}},
            opset_version=17,
            dynamo=False,
        )
    proto = onnx.load(str(path))
    proto.metadata_props.add(key=SETTINGS_METADATA_KEY, value=settings_json(settings))
    onnx.save(proto, str(path))
    return path


@pytest.fixture(scope="module")
def kitti8(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 real VOC images as a KITTI folder (256×144): the last names, so never one of the
    calibration images (the first names): calibrate refuses images in two roles."""
    from heron.training.data.convert import convert_samples
    from heron.training.data.voc import from_voc

    from tests.training.conftest import CLASS_MAP, KITTI_SIZE

    source = shared_data / "facemask-kaggle"
    samples = sorted(from_voc(source / "annotations", source / "images"), key=lambda s: s.name)
    samples = samples[-8:]
    kitti = tmp_path_factory.mktemp("kitti8") / "kitti"
    convert_samples(samples, kitti, class_map={k: k for k in CLASS_MAP}, size=KITTI_SIZE)
    return kitti


@pytest.mark.shared_data
def test_calibrate_reports_per_class_ap_and_passes_the_gate(
    trained_layout_onnx: Path, calib_images: Path, kitti8: Path, tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    args = ["calibrate", "-m", str(trained_layout_onnx), "--images", str(calib_images)]
    args += ["--batches", "2", "--batch-size", "4", "--method", "minmax", "-o", str(tmp_path)]
    args += ["--eval-data", str(kitti8), "--max-ap-drop", "100", "--json", str(report)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "calibrated" in result.output and "mAP" in result.output
    assert "accuracy gate passed: INT8 loses at most 100 mAP points" in result.output
    data = json.loads(report.read_text())
    assert data["images"] == 8 and data["tensors"] > 20
    labels = [r["label"] for r in data["accuracy"]]
    assert labels == ["TensorRT Q/DQ (S8S8)", "ONNX Runtime CPU (U8S8)"]
    for variant in data["accuracy"]:
        assert set(variant["classes"]) == {"mask", "no-mask"}
        assert 0.0 <= variant["int8_mAP"] <= 100.0


@pytest.mark.shared_data
@pytest.mark.parametrize("limit", [["--max-ap-drop", "1.0"], []], ids=["given", "default"])
def test_gate_failure_exits_1_with_per_class_numbers(
    trained_layout_onnx: Path,
    calib_images: Path,
    kitti8: Path,
    tmp_path: Path,
    *,
    monkeypatch: pytest.MonkeyPatch,
    limit: list[str],
) -> None:
    """The gate is on whenever --eval-data is given: 1.0 point, the engine Job's default."""

    def fake_ap(model: Path, data: Path) -> tuple[dict[str, float], float]:
        # FP32 scores 80/60; the INT8 models lose 3 points on no-mask.
        if model == trained_layout_onnx:
            return {"mask": 80.0, "no-mask": 60.0}, 70.0
        return {"mask": 80.0, "no-mask": 57.0}, 68.5

    monkeypatch.setattr(accuracy, "evaluate_ap", fake_ap)
    args = ["calibrate", "-m", str(trained_layout_onnx), "--images", str(calib_images)]
    args += ["--batches", "1", "--batch-size", "4", "-o", str(tmp_path)]
    args += ["--eval-data", str(kitti8), *limit]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "INT8 loses more than 1.00 points of mAP" in result.output
    assert "no-mask" in result.output and "57.00" in result.output and "3.00" in result.output


def test_the_gate_default_is_the_engine_jobs() -> None:
    from heron.engine.options import GateOptions
    from heron.engine.service import EngineSettings

    default = GateOptions().max_ap_drop
    assert default == EngineSettings.model_fields["max_ap_drop"].default == 1.0
    shown = runner.invoke(app, ["calibrate", "--help"], env={"COLUMNS": "300"}).output
    assert "(default: 1.0)" in shown.split("--max-ap-drop")[1].split("--json")[0]


@pytest.mark.parametrize("value", ["-1", "many"])
def test_a_malformed_gate_is_refused(tmp_path: Path, value: str) -> None:
    args = ["calibrate", "-m", "m.onnx", "--images", ".", "-o", str(tmp_path)]
    result = runner.invoke(app, [*args, "--eval-data", ".", "--max-ap-drop", value])
    assert result.exit_code == 2 and "--max-ap-drop" in result.output


def test_gate_needs_eval_data(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["calibrate", "-m", "m.onnx", "--images", ".", "-o", str(tmp_path), "--max-ap-drop", "1"],
    )
    assert result.exit_code == 1
    assert "--max-ap-drop needs --eval-data" in result.output


def test_check_gate_passes_within_the_limit() -> None:
    report = VariantReport("v", Path("m.onnx"), 70.0, 69.2, (ClassDelta("mask", 70.0, 69.2),))
    check_gate([report], 1.0)
    with pytest.raises(AccuracyGateError, match=r"mask\s+70.00\s+69.20\s+0.80"):
        check_gate([report], 0.5)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--precision", "int4"], "--precision: expected 'fp32', 'fp16' or 'int8', got 'int4'"),
        (["--min-batch", "8", "--max-batch", "4"], "min_batch ≤ opt_batch ≤ max_batch"),
        (["--builder", "tensorrt_rtx", "--targets", "sm90"], "sm90 not supported"),
    ],
)
def test_build_engine_refuses_bad_options(
    extra: list[str], message: str, detector_onnx: Path, tmp_path: Path
) -> None:
    pytest.importorskip("tensorrt_rtx", reason="TensorRT-RTX is not installed")
    result = runner.invoke(
        app, ["build-engine", "--onnx", str(detector_onnx), "-o", str(tmp_path), *extra]
    )
    assert result.exit_code == 1
    assert message in result.output


def test_build_engine_publishes_a_plan(detector_onnx: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorrt_rtx", reason="TensorRT-RTX is not installed")
    args = ["build-engine", "--onnx", str(detector_onnx), "--precision", "fp16"]
    args += ["--targets", "sm89", "--max-batch", "8", "-o", str(tmp_path), "--model-name", "det"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "det/1/model_sm89.plan").is_file()
    assert 'platform: "tensorrt_plan"' in (tmp_path / "det/config.pbtxt").read_text()


@pytest.mark.shared_data
def test_job_calibrates_builds_and_publishes(
    detector_onnx: Path, calib_images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("tensorrt_rtx", reason="TensorRT-RTX is not installed")
    settings = tmp_path / "engine.yaml"
    settings.write_text(
        f"onnx: {detector_onnx}\nrepository: {tmp_path / 'repo'}\nmodel_name: det\n"
        f"precision: int8\nwork_dir: {tmp_path / 'work'}\n"
        f"calibration:\n  images: {calib_images}\n  batches: 2\n  batch_size: 4\n"
        "batch:\n  max: 8\n"
    )
    assert CALIB_IMAGES >= 8
    assert main(["--config", str(settings)]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["ok"] and out["steps"] == ["calibrate", "build", "publish"]
    for model in ("det", "det_onnx", "det_python"):
        assert (tmp_path / "repo" / model / "config.pbtxt").is_file()
    assert (tmp_path / "repo/det/1/model_sm86_sm89.plan.json").is_file()


@pytest.mark.parametrize(
    ("yaml", "code"),
    [("onnx: m.onnx\n", 2), ("onnx: m.onnx\nrepository: r\nprecision: int8\n", 1)],
)
def test_job_refuses_bad_requests(yaml: str, code: int, tmp_path: Path) -> None:
    settings = tmp_path / "engine.yaml"
    settings.write_text(yaml)
    assert main(["--config", str(settings)]) == code


def test_the_engine_commands_take_their_defaults_from_the_options_models() -> None:
    from heron.cli.main import app
    from heron.core.options import field_default
    from heron.engine.options import BuildOptions, CalibrationOptions

    runner = CliRunner()
    wide = {"COLUMNS": "300"}  # rich wraps help text to the terminal
    build = runner.invoke(app, ["build-engine", "--help"], env=wide).output
    for name in ("min_batch", "opt_batch", "max_batch", "precision"):
        assert f"(default: {field_default(BuildOptions, name)})" in build, name
    calibrate = runner.invoke(app, ["calibrate", "--help"], env=wide).output
    for name in ("batches", "batch_size", "percentile", "keep_fp_max"):
        assert f"(default: {field_default(CalibrationOptions, name)})" in calibrate, name


def test_publish_onnx_adds_a_version_onnx_runtime_and_triton_load(
    detector_onnx: Path, tmp_path: Path
) -> None:
    args = ["publish-onnx", "--onnx", str(detector_onnx), "-o", str(tmp_path)]
    args += ["--model-name", "det_onnx", "--version", "1733600000", "--max-batch", "8"]
    result = runner.invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    published = tmp_path / "det_onnx/1733600000/model.onnx"
    assert published.read_bytes() == detector_onnx.read_bytes()
    assert f"→ {published}" in result.output  # the line the operator's Job report reads
    config = (tmp_path / "det_onnx/config.pbtxt").read_text()
    assert 'platform: "onnxruntime_onnx"' in config
    assert "max_batch_size: 8" in config
    again = runner.invoke(app, [*args[:-4]])  # no --version: the next one
    assert again.exit_code == 0, again.output
    assert (tmp_path / "det_onnx/1733600001/model.onnx").is_file()  # the next version


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("missing.onnx", "is not a file"),
        ("not-onnx.txt", "not-onnx.txt"),
    ],
)
def test_publish_onnx_refuses_what_is_not_an_onnx_file(
    given: str, message: str, tmp_path: Path
) -> None:
    (tmp_path / "not-onnx.txt").write_text("hello\n")
    args = ["publish-onnx", "--onnx", str(tmp_path / given), "-o", str(tmp_path / "repo")]
    result = runner.invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code != 0
    assert message in result.output
    assert not (tmp_path / "repo").exists() or not any((tmp_path / "repo").iterdir())
