"""The training Job's command line (`python -m heron.training`, `heron train-job`): its options
and HERON_TRAIN_* variables, the operator's command, misuse, and what it prints on a pipe: a
progress line each epoch, and JSON lines with `--log-format json`."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from heron.cli.main import app
from heron.training import JobRequest
from heron.training.job_cli import STEP_PREFIX, main
from heron_operator.training_reconcile import step_of
from typer.testing import CliRunner

from tests.training.test_job import write_spec

RESNET10 = 'arch: "resnet" num_layers: 10'
VARIABLES = ("SPEC", "RESULTS", "DEVICE", "COMPILE", "PROGRESS", "CUDNN_BENCHMARK", "EPOCHS",
             "LOG_FORMAT")  # fmt: skip

pytestmark = pytest.mark.usefixtures("root_logging_restored")


@pytest.fixture
def requests(monkeypatch: pytest.MonkeyPatch) -> list[JobRequest]:
    """The requests the command makes, instead of running them; no HERON_TRAIN_* set."""
    from heron.training import job

    for name in VARIABLES:
        monkeypatch.delenv(f"HERON_TRAIN_{name}", raising=False)
    made: list[JobRequest] = []

    def run_job(request: JobRequest, **_: Any) -> None:
        made.append(request)

    monkeypatch.setattr(job, "run_job", run_job)
    return made


def test_the_options_reach_the_request(requests: list[JobRequest]) -> None:
    assert main(["-e", "s.txt", "-r", "out", "-k", "key", "--device", "cpu", "--compile",
                 "--no-progress", "--no-cudnn-benchmark", "--epochs", "3",
                 "--log-format", "json"]) == 0  # fmt: skip
    (request,) = requests
    assert (request.spec, request.results, request.epochs) == (Path("s.txt"), Path("out"), 3)
    o = request.options
    assert (o.device, o.compile, o.progress, o.cudnn_benchmark, o.progress_logs) == (
        "cpu", True, False, False, True,
    )  # fmt: skip


def test_the_variables_stand_in_for_the_options_and_the_options_win(
    requests: list[JobRequest], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {"SPEC": "env.txt", "RESULTS": "env-out", "DEVICE": "cuda:1",
                        "COMPILE": "true", "PROGRESS": "false", "CUDNN_BENCHMARK": "0",
                        "EPOCHS": "7", "LOG_FORMAT": "json"}.items():  # fmt: skip
        monkeypatch.setenv(f"HERON_TRAIN_{name}", value)
    assert main([]) == 0
    assert main(["-e", "arg.txt", "--epochs", "2", "--log-format", "console", "--progress"]) == 0
    from_env, from_args = requests
    assert (from_env.spec, from_env.results, from_env.epochs) == (
        Path("env.txt"), Path("env-out"), 7,
    )  # fmt: skip
    o = from_env.options
    assert (o.device, o.compile, o.progress, o.cudnn_benchmark, o.progress_logs) == (
        "cuda:1", True, False, False, True,
    )  # fmt: skip
    assert (from_args.spec, from_args.results, from_args.epochs) == (
        Path("arg.txt"), Path("env-out"), 2,
    )  # fmt: skip
    assert from_args.options.progress and not from_args.options.progress_logs


def test_the_defaults_are_train_options(requests: list[JobRequest]) -> None:
    from heron.training import TrainOptions

    assert main(["-e", "s.txt", "-r", "out"]) == 0
    assert requests[0].options == TrainOptions() and requests[0].epochs is None


def test_every_option_the_operator_passes_is_the_jobs(requests: list[JobRequest]) -> None:
    from heron_operator.training_jobs import command
    from heron_operator.training_spec import TrainingRunSpec

    spec = TrainingRunSpec.model_validate({
        "taoSpec": {"configMapRef": {"name": "s", "key": "spec.txt"}},
        "dataset": {"claimName": "d"}, "artifacts": {"claimName": "a"},
        "gpu": {"count": 0}, "epochs": 4,
        "prune": {"threshold": 0.25, "normalizer": "L2", "retrainSpec": {"inline": "x: 1\n"}},
        "calibration": {"images": "kitti/images", "method": "percentile", "percentile": 99.9},
    })  # fmt: skip
    full = command(spec, "run")
    argv = full[full.index("heron.training") + 1 :]
    assert main(argv) == 0
    (request,) = requests
    assert (request.epochs, request.options.device, request.options.progress_logs) == (
        4, "cpu", True,
    )  # fmt: skip
    assert request.prune is not None and request.calibration is not None
    assert (request.prune.options.threshold, request.prune.options.normalizer) == (0.25, "L2")
    assert request.prune.retrain_spec == Path("/etc/heron/spec/retrain.txt")
    assert (request.calibration.method, request.calibration.percentile) == ("percentile", 99.9)


@pytest.mark.parametrize(
    ("argv", "variables", "message"),
    [
        ([], {}, "Missing option '--experiment_spec_file' / '-e' (env var: 'HERON_TRAIN_SPEC')"),
        (["-e", "s.txt"], {}, "Missing option '--results_dir' / '-r'"),
        (
            ["-e", "s.txt", "-r", "o"],
            {"EPOCHS": "-2"},
            "'--epochs' (env var: 'HERON_TRAIN_EPOCHS')",
        ),
        (
            ["-e", "s.txt", "-r", "o"],
            {"COMPILE": "maybe"},
            "'--compile' (env var: 'HERON_TRAIN_COMPILE')",
        ),
        (["-e", "s.txt", "-r", "o"], {"LOG_FORMAT": "xml"}, "'--log-format'"),
        (["-e", "s.txt", "-r", "o", "--min-filters", "4"], {}, "'--min-filters': prune options"),
    ],
)
def test_misuse_ends_the_job_at_once_naming_the_option(
    *,
    requests: list[JobRequest],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    variables: dict[str, str],
    message: str,
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(f"HERON_TRAIN_{name}", value)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in " ".join(err.split()), err
    assert err.startswith("Usage: python -m heron.training") and requests == []


def test_heron_train_job_is_the_same_command(requests: list[JobRequest]) -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["train-job", "-e", "s.txt", "-r", "out", "--epochs", "1"])
    assert out.exit_code == 0, out.output
    assert requests[0].epochs == 1 and requests[0].results == Path("out")
    assert runner.invoke(app, ["train-job", "--help"]).exit_code == 0


# --- what a Job prints on a pipe: two epochs of a tiny network on 8 synthetic images ----------


def job(synthetic_kitti: Path, tmp_path: Path, *options: str) -> int:
    spec = write_spec(synthetic_kitti, RESNET10, name="cli_job_spec.txt")
    return main(["-e", str(spec), "-r", str(tmp_path / "job"), "--device", "cpu",
                 "--epochs", "2", *options])  # fmt: skip


def test_a_job_on_a_pipe_prints_a_progress_line_each_epoch(
    synthetic_kitti: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert job(synthetic_kitti, tmp_path) == 0
    out = capsys.readouterr().out.splitlines()
    progress = [line for line in out if line.startswith("train: ")]
    assert len(progress) == 2, out
    assert "epoch 1/2 done, loss " in progress[0] and " s left" in progress[0]
    assert "images/s" in progress[0] and "epoch 2/2 done" in progress[1]
    assert [line for line in out if line.startswith(STEP_PREFIX)] == [
        f"{STEP_PREFIX}{step}" for step in ("Train", "Evaluate", "Export")
    ]
    assert step_of("\n".join(out)) == "Export"  # what the operator reads of the pod's log


def test_a_job_logging_json_writes_json_lines_with_the_epochs_numbers(
    synthetic_kitti: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert job(synthetic_kitti, tmp_path, "--log-format", "json") == 0
    printed = capsys.readouterr()
    assert printed.out == ""
    lines = [json.loads(line) for line in printed.err.splitlines()]  # every line a JSON object
    assert {line["service"] for line in lines} == {"heron-training"}
    epochs = [line for line in lines if line.get("stage") == "train" and "epoch" in line]
    assert [(e["epoch"], e["epochs"]) for e in epochs] == [(1, 2), (2, 2)]
    for epoch in epochs:
        assert epoch["loss"] > 0 and epoch["images_per_s"] > 0 and epoch["steps_per_s"] > 0
    # A time left after epoch 1 (it rounds to 0 when the images are already cached), none
    # after the last.
    assert epochs[0]["eta_s"] >= 0 and epochs[1]["eta_s"] is None and "mAP" in epochs[1]
    steps = [line["step"] for line in lines if "step" in line]
    assert steps == ["Train", "Evaluate", "Export"]
    # job_report and the TrainingRun controller read the step from the JSON lines too
    assert step_of(printed.err) == "Export"


def test_heron_train_shares_the_options_and_their_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from heron.training import TrainOptions, job

    called: list[tuple[Path, TrainOptions]] = []

    def run_training(spec: Path, results: Path, options: TrainOptions, **_: Any) -> Any:
        called.append((spec, options))
        return SimpleNamespace(epochs=0, steps=0, wall_s=0.0, images_per_s=0.0, final_model="m")

    monkeypatch.setattr(job, "run_training", run_training)
    monkeypatch.setenv("HERON_TRAIN_SPEC", str(tmp_path / "s.txt"))
    monkeypatch.setenv("HERON_TRAIN_CUDNN_BENCHMARK", "false")
    out = CliRunner().invoke(app, ["train", "-r", str(tmp_path / "r"), "--device", "cpu"])
    assert out.exit_code == 0, out.output
    ((spec, options),) = called
    assert spec == tmp_path / "s.txt"
    assert options == TrainOptions(device="cpu", cudnn_benchmark=False)


def test_a_failing_job_logging_json_says_why_in_a_json_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from heron_operator.job_report import readable

    spec = tmp_path / "gone.txt"
    assert main(["-e", str(spec), "-r", str(tmp_path / "r"), "--log-format", "json"]) == 1
    lines = capsys.readouterr().err.splitlines()
    last = json.loads(lines[-1])
    assert last["level"] == "ERROR" and last["message"].startswith(f"error: {spec}")
    assert readable(lines[-1]) == last["message"]  # what job_report leaves as the message
    assert [json.loads(line)["step"] for line in lines[:-1]] == ["Train"]
