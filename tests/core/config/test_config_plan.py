"""`heron config plan`: the plan on stdout (JSON or YAML), refusals as file:line, exit status."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from heron.core.config.cli import app
from heron.core.plan.model import PipelinePlan
from heron.core.plan.settings.inference import InferenceSettings, TritonSettings
from typer.testing import CliRunner

from tests.core.plan.pipelines import FILE_SOURCE, TRACKER, write_pipeline

runner = CliRunner()
ENV = {"COLUMNS": "300"}


def test_the_printed_json_is_the_plan(tmp_path: Path) -> None:
    config = write_pipeline(tmp_path, extra=TRACKER)

    result = runner.invoke(
        app, ["plan", str(config), "--backend", "triton", "--triton-model", "m"], env=ENV
    )

    assert result.exit_code == 0, result.output
    plan = PipelinePlan.model_validate_json(result.stdout)
    assert plan.config == config and plan.topology == "lossless"
    inference = plan.service("inference")
    assert inference is not None and isinstance(inference.settings, InferenceSettings)
    assert inference.settings.backend == TritonSettings(model_name="m")
    # The config's warning is in the plan and on stderr, where a script piping stdout sees it.
    assert [w.field for w in plan.warnings] == ["tracker.ll_lib_file"]
    assert f"{config}:6: warning: [tracker.ll_lib_file]" in result.stderr


def test_yaml_holds_the_same_plan(tmp_path: Path) -> None:
    config = write_pipeline(tmp_path)

    as_json = runner.invoke(app, ["plan", str(config), "--no-streammux"], env=ENV)
    as_yaml = runner.invoke(app, ["plan", str(config), "--no-streammux", "--format", "yaml"])

    assert as_yaml.exit_code == 0, as_yaml.output
    from_yaml = PipelinePlan.model_validate(yaml.safe_load(as_yaml.stdout))
    assert from_yaml == PipelinePlan.model_validate_json(as_json.stdout)


def test_the_streammux_option_forces_the_muxer(tmp_path: Path) -> None:
    config = write_pipeline(tmp_path, FILE_SOURCE)

    result = runner.invoke(app, ["plan", str(config), "--streammux"], env=ENV)

    plan = PipelinePlan.model_validate_json(result.stdout)
    assert plan.topology == "live" and plan.service("streammux") is not None


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(app, ["plan", str(tmp_path / "gone.yaml")], env=ENV)

    assert result.exit_code == 1
    assert f"{tmp_path / 'gone.yaml'}: error: cannot read the file" in result.stderr
    assert result.stdout == ""


def test_a_bad_line_is_named(tmp_path: Path) -> None:
    config = tmp_path / "app.txt"
    config.write_text("[source0]\nenable=1\ntype=3\nuri=file:///x.mp4\nnum-sources=lots\n")

    result = runner.invoke(app, ["plan", str(config)], env=ENV)

    assert result.exit_code == 1
    assert f"{config}:5: error: [source0.num-sources]" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backend", "triton"], "--backend triton needs --triton-model"),
        (["--backend", "tensorrt"], "'onnxruntime' or 'triton'"),
        (["--threads", "-1"], "greater than or equal to 0"),
    ],
)
def test_bad_options_are_refused(tmp_path: Path, args: list[str], message: str) -> None:
    config = write_pipeline(tmp_path)

    result = runner.invoke(app, ["plan", str(config), *args], env=ENV)

    assert result.exit_code == 1
    assert "error: " in result.stderr and message in result.stderr
    assert result.stdout == ""


def test_a_source_that_cannot_open_is_named(tmp_path: Path) -> None:
    # (An unsupported scheme, ftp://, is refused earlier: on the uri line, by the loader.)
    config = write_pipeline(tmp_path, "{type: uri, enable: true, uri: 'file:///no/y.mp4'}")

    result = runner.invoke(app, ["plan", str(config)], env=ENV)

    assert result.exit_code == 1
    assert f"error: {config}: cannot open the pipeline's sources" in result.stderr
    assert "[source0]" in result.stderr and "/no/y.mp4" in result.stderr
