"""`heron config check`: normalized YAML on stdout, findings as file:line, exit status."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from heron.core.config.cli import app
from heron.core.config.kinds import FileKind, detect_kind
from typer.testing import CliRunner

from tests.core.config.deepstream_helpers import APP, NVINFER, copy_fixtures, edit, line_of

TAO_FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "tao"
runner = CliRunner()


def _documents(stdout: str) -> list[dict[str, object]]:
    return [d for d in yaml.safe_load_all(stdout) if d]


def test_reference_pipeline_checks_clean(tmp_path: Path) -> None:
    folder = copy_fixtures(tmp_path, with_models=True)

    result = runner.invoke(app, ["check", str(folder / APP)])

    assert result.exit_code == 0, result.output
    [pipeline] = _documents(result.stdout)
    assert pipeline["tiled_display"]["columns"] == 2  # type: ignore[index]
    assert "nvidia_tlt" not in result.output and "**********" in result.stdout
    assert f"{folder / APP}:{line_of(folder / APP, b'batch-size=4')}: warning:" in result.stderr


def test_strict_turns_missing_files_into_errors(tmp_path: Path) -> None:
    folder = copy_fixtures(tmp_path)

    relaxed = runner.invoke(app, ["check", str(folder / APP)])
    strict = runner.invoke(app, ["check", "--strict", str(folder / APP)])

    assert relaxed.exit_code == 0
    assert strict.exit_code == 1
    assert "error: [property.tlt-encoded-model] file" in strict.stderr


def test_errors_exit_1_with_file_and_line(tmp_path: Path) -> None:
    folder = copy_fixtures(tmp_path, with_models=True)
    edit(folder / NVINFER, b"network-mode=1", b"network-mode=8")

    result = runner.invoke(app, ["check", str(folder / APP)])

    line = line_of(folder / NVINFER, b"network-mode=8")
    assert result.exit_code == 1
    assert f"{folder / NVINFER}:{line}: error: [property.network-mode] expected one of" in (
        result.stderr
    )


def test_several_files_of_each_kind(tmp_path: Path) -> None:
    folder = copy_fixtures(tmp_path, with_models=True)
    first = runner.invoke(app, ["check", str(folder / APP)])
    (folder / "pipeline.yaml").write_text(first.stdout.split("---")[0])

    result = runner.invoke(app, ["check", str(folder / NVINFER), str(folder / "pipeline.yaml")])

    assert result.exit_code == 0, result.output
    nvinfer, pipeline = _documents(result.stdout)
    assert nvinfer["labels"] == ["Mask", "No-Mask"]
    assert pipeline["sources"][0]["camera_width"] == 640  # type: ignore[index]


@pytest.mark.skipif(
    not (TAO_FIXTURES / "detectnet_v2_train_resnet18_facemask.txt").exists(),
    reason="the TAO spec fixture is written by the TAO loader's author",
)
def test_tao_spec_goes_to_the_tao_loader() -> None:
    spec = TAO_FIXTURES / "detectnet_v2_train_resnet18_facemask.txt"

    result = runner.invoke(app, ["check", str(spec)])

    assert result.exit_code == 0, result.output
    [document] = _documents(result.stdout)
    assert document["kind"] == "experiment"
    assert document["spec"]["random_seed"] == 42  # type: ignore[index]


def test_unknown_file_kind_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("just words\n")

    result = runner.invoke(app, ["check", str(path)])

    assert result.exit_code == 1
    assert "cannot tell what this file is" in result.stderr


@pytest.mark.parametrize(
    ("name", "text", "kind"),
    [
        ("a.txt", "[application]\nenable-perf-measurement=1\n", FileKind.DEEPSTREAM_APP),
        ("a.txt", "# c\n[source0]\ntype=1\n", FileKind.DEEPSTREAM_APP),
        ("b.txt", "[property]\nbatch-size=1\n", FileKind.NVINFER),
        ("c.yaml", "sources:\n  0: {}\n", FileKind.PIPELINE_YAML),
        ("d.yaml", "random_seed: 42\ndataset_config:\n  x: 1\n", FileKind.TAO_SPEC),
        ("e.txt", "random_seed: 42\nmodel_config {\n}\n", FileKind.TAO_SPEC),
        ("f.txt", "hello\n", None),
        # A header missing its ']' still tells the kind; the loader then names the line.
        ("g.txt", "[property\nbatch-size=1\n[class-attrs-0]\n", FileKind.NVINFER),
        ("h.txt", "# c\n[streammux\nbatch-size=1\n", FileKind.DEEPSTREAM_APP),
        ("i.txt", "x: [\n[1, 2,\n3]\n", FileKind.TAO_SPEC),
    ],
)
def test_detect_kind(name: str, text: str, kind: FileKind | None) -> None:
    assert detect_kind(Path(name), text.encode()) is kind


GLIB_SAYS = "is not a key-value pair, group or comment; a group header needs its closing ']'"


@pytest.mark.parametrize(
    ("text", "header", "line"),
    [
        ("# muxer only\n[streammux\nbatch-size=1\n", "[streammux", 2),
        ("[property\nnum-detected-classes=2\n[class-attrs-0]\neps=0.2\n", "[property", 1),
    ],
)
def test_header_missing_its_bracket_is_named_with_file_and_line(
    tmp_path: Path, text: str, header: str, line: int
) -> None:
    path = tmp_path / "config.txt"
    path.write_text(text)

    result = runner.invoke(app, ["check", str(path)])

    assert result.exit_code == 1
    assert f"{path}:{line}: error: malformed group header: line {header!r} {GLIB_SAYS}" in (
        result.stderr
    )
    assert "cannot tell what this file is" not in result.stderr


def test_unknown_kind_still_names_broken_header_lines(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\n[notes\n")

    result = runner.invoke(app, ["check", str(path)])

    assert result.exit_code == 1
    assert "cannot tell what this file is" in result.stderr
    assert f"{path}:2: error: malformed group header: line '[notes' {GLIB_SAYS}" in result.stderr
