"""`heron run` refuses bad input with one clear line, before starting anything."""

from __future__ import annotations

from pathlib import Path

import pytest
from heron.run.cli import app
from typer.testing import CliRunner


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_a_missing_config_is_named(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", "-c", str(tmp_path / "gone.txt")])
    assert result.exit_code == 1
    assert f"{tmp_path / 'gone.txt'}: no such file" in result.output


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[source0]\nenable=1\ntype=2\nuri=file:///nowhere.mp4\n[sink0]\nenable=1\ntype=1\n",
            "does not exist",
        ),
        ("[source0\nenable=1\n", "app.txt:1"),
        ("[streammux]\nwidth=wide\n", "width"),
    ],
    ids=["missing clip", "malformed group", "bad value"],
)
def test_a_bad_pipeline_fails_before_anything_starts(
    runner: CliRunner, tmp_path: Path, text: str, expected: str
) -> None:
    config = tmp_path / "app.txt"
    config.write_text(text)
    result = runner.invoke(app, ["run", "-c", str(config), "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert expected in result.output
    assert "started redis-server" not in result.output
    assert not (tmp_path / "run" / "ingest.json").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--backend", "tensorrt"], "onnxruntime"),
        (["--threads", "-1"], "greater than or equal to 0"),
        (["--max-fast-crashes", "0"], "greater than or equal to 1"),
        (["--max-unready-crashes", "0"], "greater than or equal to 1"),
        (["--grpc-listen", "50051"], "--grpc-listen: "),
        (["--grpc-listen", "localhost:99999"], "out of range"),
        (["--detector-listen", "nowhere"], "--detector-listen: "),
    ],
)
def test_bad_options_are_refused(
    runner: CliRunner, tmp_path: Path, args: list[str], expected: str
) -> None:
    config = tmp_path / "app.txt"
    config.write_text("")
    result = runner.invoke(app, ["run", "-c", str(config), *args])
    assert result.exit_code == 1
    assert expected in result.output


def test_the_options_take_their_defaults_from_the_models(runner: CliRunner) -> None:
    from heron.core.options import field_default
    from heron.run.options import RunOptions
    from heron.run.supervisor import RestartPolicy
    from pydantic import BaseModel

    text = runner.invoke(app, ["run", "--help"], env={"COLUMNS": "300"}).output
    options: list[tuple[type[BaseModel], str]] = [
        (RunOptions, "pipeline"),
        (RunOptions, "backend"),
        (RunOptions, "intra_op_threads"),
        (RunOptions, "encoder_preset"),
        (RunOptions, "grpc_listen"),
        (RestartPolicy, "max_fast_crashes"),
        (RestartPolicy, "max_unready_crashes"),
    ]
    for model, name in options:
        assert f"(default: {field_default(model, name)})" in text, name
