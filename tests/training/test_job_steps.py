"""The training Job's optional steps: prune and retrain (`heron prune`'s library), INT8
calibration (`heron calibrate`, run as the engine's command) and the INT8 models' AP, the
`heron-step:` lines the operator reads, and the options' checks."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from heron.training import STEPS, CalibrationStep, JobRequest, PruneStep
from heron.training.job_cli import STEP_PREFIX, main
from heron_operator.job_report import STEP_PREFIX as OPERATOR_STEP_PREFIX

from tests.training.test_job import write_spec

RESNET10 = 'arch: "resnet" num_layers: 10'


@pytest.fixture(autouse=True)
def own_log_handlers(root_logging_restored: None) -> None:
    """main() sets the process's logging up on the stderr of the moment (capsys's here); the
    root logger is put back after each test, so later tests never log to a closed stream."""


def test_the_job_and_the_operator_agree_on_the_step_line() -> None:
    assert STEP_PREFIX == OPERATOR_STEP_PREFIX
    assert STEPS == ("Train", "Prune", "Retrain", "Evaluate", "Export", "Calibrate")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"batches": 0}, "CalibrationStep.batches: expected 1 or more, got 0"),
        ({"batch_size": 257}, "CalibrationStep.batch_size: expected 1..256 images, got 257"),
        ({"method": "kl"}, "CalibrationStep.method: expected one of"),
        ({"percentile": 99.9}, "percentile: only read with method 'percentile'"),
        ({"method": "percentile", "percentile": 50.0}, "expected (50, 100], got 50.0"),
    ],
)
def test_calibration_options_are_checked_when_made(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        CalibrationStep(**fields)


def test_calibration_options_become_heron_calibrates() -> None:
    step = CalibrationStep(batches=2, method="percentile", percentile=99.99)
    assert step.arguments() == ["--batches", "2", "--method", "percentile", "--percentile", "99.99"]
    assert CalibrationStep().arguments() == []  # heron calibrate's defaults


def test_a_request_refuses_steps_it_cannot_run(tmp_path: Path) -> None:
    from heron.training.prune.pruner import PruneOptions

    spec, prune = tmp_path / "spec.txt", PruneStep(PruneOptions())
    with pytest.raises(ValueError, match=r"JobRequest\.prune: expected a trained model"):
        JobRequest(spec, tmp_path, budget_s=60, prune=prune)
    with pytest.raises(ValueError, match=r"JobRequest\.prune: expected a trained model"):
        JobRequest(spec, tmp_path, epochs=0, prune=prune)
    with pytest.raises(ValueError, match="reads no training images to calibrate on"):
        JobRequest(spec, tmp_path, epochs=0, calibration=CalibrationStep())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--pth", "0.2"], "Invalid value for '--pth': prune options need --prune"),
        (
            ["--calibration-batches", "2", "--calibration-method", "kl"],
            "Invalid value for '--calibration-batches' / '--calibration-method': calibration "
            "options need --calibrate",
        ),
        (["--prune", "--pth", "1.5"], "'--pth': expected a threshold in [0, 1], got 1.5"),
        (["--prune", "--normalizer", "L1"], "'--normalizer': expected one of"),
        (["--calibrate", "--calibration-method", "kl"], "'--calibration-method': expected one"),
        (["--calibrate", "--calibration-batch-size", "0"], "'--calibration-batch-size': expected"),
        (["--epochs", "-1"], "'--epochs' (env var: 'HERON_TRAIN_EPOCHS'): Input should be greater"),
        (["--epochs", "x"], "'--epochs'"),
        (["--epochs", "0", "--prune"], "'--prune': JobRequest.prune: expected a trained model"),
        (["--log-format", "xml"], "'--log-format'"),
        (["--bogus"], "No such option: --bogus"),
    ],
)
def test_the_jobs_malformed_options_end_it_at_once_naming_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    code = main(["-e", str(tmp_path / "spec.txt"), "-r", str(tmp_path / "r"), *options])
    assert code == 2
    assert message in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("options", "missing"),
    [
        (
            ["--prune", "--retrain-spec", "gone.txt"],
            "gone.txt: no such file or folder (the retrain",
        ),
        (["--calibrate", "--calibration-images", "gone"], "gone: no such file or folder (the cal"),
    ],
)
def test_missing_step_inputs_end_the_job_before_it_trains(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], missing: str
) -> None:
    spec = write_spec(tmp_path, RESNET10)
    code = main(["-e", str(spec), "-r", str(tmp_path / "r"), "--device", "cpu", *options])
    out = capsys.readouterr()
    assert code == 1 and missing in out.err
    assert out.out.splitlines() == [f"{STEP_PREFIX}Train"]  # the step it ended in
    assert not (tmp_path / "r" / "checkpoints").exists()


@pytest.mark.shared_data
def test_a_job_trains_prunes_retrains_exports_and_scores_int8(
    kitti16: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from heron.training.prune.layout import count_parameters, load_pruned

    spec = write_spec(kitti16, RESNET10, name="steps_spec.txt")
    retrain = write_spec(kitti16, RESNET10, name="steps_retrain.txt")
    results = tmp_path / "job"
    code = main([
        "-e", str(spec), "-r", str(results), "--device", "cpu", "--epochs", "1",
        "--prune", "--pth", "0.95", "--min-filters", "8", "--retrain-spec", str(retrain),
        "--calibrate", "--calibration-images", str(kitti16 / "kitti" / "images"),
        "--calibration-batches", "2", "--calibration-batch-size", "4",
    ])  # fmt: skip
    printed = capsys.readouterr().out.splitlines()
    assert code == 0
    assert [line for line in printed if line.startswith(STEP_PREFIX)] == [
        STEP_PREFIX + step for step in STEPS
    ]
    report = json.loads((results / "report.json").read_text())
    assert report["artifacts"] == {
        "checkpoint": "retrain/model.pt",
        "onnx": "model.onnx",
        "calibrationCache": "int8/calibration.bin",
        "report": "report.json",
    }
    for path in report["artifacts"].values():
        assert (results / path).is_file(), path
    # pruned, then retrained from the pruned network: the final model is the narrow one
    pruning = report["pruning"]
    assert pruning["after"]["parameters"] < pruning["before"]["parameters"] / 2
    final, _ = load_pruned(results / "retrain" / "model.pt")
    assert count_parameters(final) == pruning["after"]["parameters"]
    assert (results / "retrain" / "experiment_spec.txt").read_text() == retrain.read_text()
    assert report["epochs"] == 1 and report["onnx_max_abs_diff"] < 1e-4
    # INT8: both of heron calibrate's models, scored on the validation images as FP32 was
    int8 = report["int8"]
    labels = [v["label"] for v in int8["variants"]]
    assert labels == ["TensorRT Q/DQ (S8S8)", "ONNX Runtime CPU (U8S8)"]
    for variant in int8["variants"]:
        assert (results / variant["model"]).is_file()
        assert set(variant["ap"]) == set(report["ap"]) == {"mask", "no-mask"}
        assert variant["apDrop"] == pytest.approx(report["mAP"] - variant["mAP"])
    worst = max(int8["variants"], key=lambda v: v["apDrop"])
    assert (int8["apDrop"], int8["mAP"], int8["ap"]) == (
        worst["apDrop"], worst["mAP"], worst["ap"],
    )  # fmt: skip
    assert (results / "int8" / "calibration.bin").read_text().startswith("TRT-")
