"""Every `heron` command that writes refuses a bad output path before its work starts: one
line on stderr, exit 1, no traceback (issue 13)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from heron.cli.main import app
from typer.testing import CliRunner

runner = CliRunner()


@dataclass(frozen=True)
class Command:
    """One output option of one command, and where the command's real work starts."""

    option: str
    expects_file: bool
    work: str  # dotted name of the function doing the work: it must never be called
    argv: Callable[[Path], list[str]]  # the command line, given the output path
    an_input: str  # one of the command's inputs (relative to the workspace)


COMMANDS = {
    "data convert": Command(
        "--output",
        False,
        "heron.training.data.cli.convert_samples",
        lambda out: ["data", "convert", "-f", "voc", "-i", "voc", "-o", str(out)],
        "voc",
    ),
    "data split": Command(
        "--output",
        False,
        "heron.training.data.split.split_dataset",
        lambda out: ["data", "split", "kitti", "-o", str(out)],
        "kitti/images",
    ),
    "train": Command(
        "--results_dir",
        False,
        "heron.training.job.run_training",
        lambda out: ["train", "-e", "spec.txt", "-r", str(out)],
        "spec.txt",
    ),
    "evaluate --json": Command(
        "--json",
        True,
        "heron.training.job.evaluate_model",
        lambda out: ["evaluate", "-m", "model.pt", "--data", "kitti", "--json", str(out)],
        "model.pt",
    ),
    "evaluate --pr-curve": Command(
        "--pr-curve",
        True,
        "heron.training.job.evaluate_model",
        lambda out: ["evaluate", "-m", "model.pt", "--data", "kitti", "--pr-curve", str(out)],
        "kitti",
    ),
    "infer": Command(
        "--output",
        False,
        "heron.training.infer.infer_images",
        lambda out: ["infer", "-m", "model.onnx", "-i", "images", "-o", str(out)],
        "images",
    ),
    "export": Command(
        "--output_file",
        True,
        "heron.training.job.export_model",
        lambda out: ["export", "-m", "model.pt", "-o", str(out)],
        "model.pt",
    ),
    "prune": Command(
        "--output_file",
        True,
        "heron.training.prune.pruner.prune_checkpoint",
        lambda out: ["prune", "-m", "model.pt", "-o", str(out)],
        "model.pt",
    ),
    "calibrate -o": Command(
        "--output",
        False,
        "heron.engine.pipeline.calibrate_and_compare",
        lambda out: ["calibrate", "-m", "model.onnx", "--images", "images", "-o", str(out)],
        "images",
    ),
    "calibrate --json": Command(
        "--json",
        True,
        "heron.engine.pipeline.calibrate_and_compare",
        lambda out: [
            *("calibrate", "-m", "model.onnx", "--images", "images", "-o", "int8"),
            *("--json", str(out)),
        ],
        "model.onnx",
    ),
    "build-engine": Command(
        "--output",
        False,
        "heron.engine.pipeline.build_and_publish",
        lambda out: ["build-engine", "--onnx", "model.onnx", "-o", str(out)],
        "model.onnx",
    ),
    "run": Command(
        "--run-dir",
        False,
        "heron.run.runner.run_pipeline",
        lambda out: ["run", "-c", "app.txt", "--run-dir", str(out)],
        "app.txt",
    ),
}


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The commands' inputs (their content never matters: nothing may be read) as the cwd."""
    for folder in ("voc", "kitti/images", "images", "a_folder"):
        (tmp_path / folder).mkdir(parents=True)
    for name in ("spec.txt", "model.pt", "model.onnx", "app.txt", "a_file"):
        (tmp_path / name).write_text("x")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _refuse_work(monkeypatch: pytest.MonkeyPatch, target: str) -> list[str]:
    calls: list[str] = []

    def started(*args: Any, **kwargs: Any) -> Any:
        calls.append(target)
        raise AssertionError(f"{target} ran despite a bad output path")

    monkeypatch.setattr(target, started)
    return calls


def _wrong_kind(command: Command) -> tuple[Path, str]:
    if command.expects_file:
        return Path("a_folder"), "is an existing directory, expected a file path"
    return Path("a_file"), "is an existing file, expected a folder"


CASES: dict[str, Callable[[Command, Path], tuple[Path, str]]] = {
    "wrong kind": lambda c, _: _wrong_kind(c),
    "under a file": lambda c, _: (Path("a_file/out/x.onnx"), "a_file is a file, not a folder"),
    "read-only": lambda c, _: (Path("ro/new/x.json"), "the folder ro/ is not writable"),
    "an input": lambda c, _: (Path(c.an_input), f"is the input {c.an_input}"),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_bad_output_path_is_refused_before_the_work(
    name: str, case: str, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    command = COMMANDS[name]
    out, reason = CASES[case](command, workspace)
    calls = _refuse_work(monkeypatch, command.work)
    (workspace / "ro").mkdir()
    real_access = os.access
    # Tests run as root, which ignores permission bits: the read-only folder is simulated.
    monkeypatch.setattr(
        os, "access", lambda p, mode: Path(p) != Path("ro") and real_access(p, mode)
    )
    result = runner.invoke(app, command.argv(out))
    assert result.exit_code == 1, result.output
    assert calls == []
    assert result.stderr.splitlines() == [f"error: {command.option} {out}: {reason}"]
    assert result.stdout == ""
    assert not isinstance(result.exception, AssertionError)


def test_train_resumes_into_an_existing_results_folder(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (workspace / "results" / "checkpoints").mkdir(parents=True)
    calls = _refuse_work(monkeypatch, "heron.training.job.run_training")
    result = runner.invoke(app, ["train", "-e", "spec.txt", "-r", "results"])
    assert calls == ["heron.training.job.run_training"], result.output  # the check let it by


def test_calibrate_may_write_beside_its_model(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DeepStream keeps calibration.bin beside model.onnx (models/facemask does)
    calls = _refuse_work(monkeypatch, "heron.engine.pipeline.calibrate_and_compare")
    runner.invoke(app, ["calibrate", "-m", "model.onnx", "--images", "images", "-o", "."])
    assert calls == ["heron.engine.pipeline.calibrate_and_compare"]


def test_a_failed_export_removes_only_what_it_created(workspace: Path) -> None:
    (workspace / "results").mkdir()
    (workspace / "results" / "model.onnx").write_text("the earlier export")
    for out in ("results/model.onnx", "new/dir/model.onnx"):
        result = runner.invoke(app, ["export", "-m", "model.pt", "-o", out])  # not a checkpoint
        assert result.exit_code == 1 and "not a PyTorch checkpoint" in result.output
    assert (workspace / "results" / "model.onnx").read_text() == "the earlier export"
    assert [p.name for p in (workspace / "results").iterdir()] == ["model.onnx"]
    assert not (workspace / "new").exists()
