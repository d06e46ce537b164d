"""The YAML form: a loaded pipeline written as YAML loads back equal; errors name YAML lines."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from heron.core.config.deepstream import read_deepstream_app
from heron.core.config.diagnostics import Diagnostics, Severity
from heron.core.config.models import Pipeline
from heron.core.config.sources import CameraSource
from heron.core.config.yaml_loader import MASK, load_pipeline_yaml, read_pipeline_yaml, to_yaml

from tests.core.config.deepstream_helpers import APP, copy_fixtures

MINIMAL = """\
sources:
  0:
    type: camera_v4l2
    enable: true
    camera_width: 640
    camera_height: 480
    camera_fps_n: 30
sinks:
  0:
    type: 1
    enable: true
osd:
  text_color: [0, 1, 0, 1]
"""


@pytest.fixture
def pipeline(tmp_path: Path) -> Pipeline:
    loaded, _ = read_deepstream_app(copy_fixtures(tmp_path, with_models=True) / APP)
    return loaded


def test_round_trip_gives_the_same_models(pipeline: Pipeline, tmp_path: Path) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(to_yaml(pipeline, reveal_secrets=True))

    again, _ = read_pipeline_yaml(path)

    assert again == pipeline


def test_written_yaml_masks_the_model_key(pipeline: Pipeline) -> None:
    text = to_yaml(pipeline)
    data = yaml.safe_load(text)

    assert "nvidia_tlt" not in text
    assert data["primary_gie"]["nvinfer"]["property"]["tlt_model_key"] == MASK
    assert data["sources"][0]["type"] == "camera_v4l2"
    assert data["primary_gie"]["bbox_border_colors"][1] == [1.0, 0.0, 0.0, 1.0]
    assert data["primary_gie"]["nvinfer"]["property"]["network_mode"] == "int8"


def test_yaml_written_with_masked_secrets_warns_when_loaded(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(to_yaml(pipeline))
    diags = Diagnostics()

    assert load_pipeline_yaml(path, diags) is not None

    [warning] = [d for d in diags.warnings if "mask" in d.message]
    assert warning.field == "primary_gie.nvinfer.property.tlt_model_key"
    assert path.read_text().splitlines()[warning.line - 1].strip().startswith("tlt_model_key:")


def test_minimal_yaml_takes_codes_or_names(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(MINIMAL)

    pipeline, diags = read_pipeline_yaml(path)

    assert isinstance(pipeline.sources[0], CameraSource)
    assert pipeline.sinks[0].type.value == "fake"
    assert pipeline.osd.text_color == (0.0, 1.0, 0.0, 1.0)
    assert diags.items == []


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        ("camera_width: 640", "camera_width: wide", 5, "valid integer"),
        ("type: 1", "type: 9", 10, "expected sink type 1 (fake)"),
        ("text_color: [0, 1, 0, 1]", "text_color: [0, 1, 0]", 13, "4 numbers"),
        ("camera_fps_n: 30", "camera_fps_n: 0", 7, "greater than or equal to 1; found 0"),
        ("    camera_fps_n: 30\n", "", 2, "missing"),
    ],
)
def test_yaml_errors_name_the_line(
    tmp_path: Path, old: str, new: str, line: int, message: str
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(MINIMAL.replace(old, new))
    diags = Diagnostics()

    assert load_pipeline_yaml(path, diags) is None

    assert [(d.line, message in d.message) for d in diags.errors] == [(line, True)]


def test_unknown_yaml_key_is_a_warning_with_the_closest_name(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(MINIMAL.replace("camera_fps_n: 30", "camera_fps_n: 30\n    camera_fsp_d: 2"))
    diags = Diagnostics()

    pipeline = load_pipeline_yaml(path, diags)

    assert pipeline is not None
    [warning] = diags.warnings
    assert warning.severity is Severity.WARNING and warning.line == 8
    assert "did you mean 'camera_fps_d'" in warning.message


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(MINIMAL.replace("    enable: true\n    camera_width", "    enable: [true\n  x"))
    diags = Diagnostics()

    assert load_pipeline_yaml(path, diags) is None
    assert diags.errors[0].line > 0 and "not valid YAML" in diags.errors[0].message


def test_gie_given_by_config_file_only_loads_its_nvinfer(tmp_path: Path) -> None:
    folder = copy_fixtures(tmp_path, with_models=True)
    path = folder / "p.yaml"
    path.write_text(
        MINIMAL + "primary_gie:\n  enable: true\n  config_file: config_infer_primary_facemask.txt\n"
    )

    pipeline, _ = read_pipeline_yaml(path)

    assert pipeline.primary_gie is not None and pipeline.primary_gie.nvinfer is not None
    assert pipeline.primary_gie.nvinfer.labels == ["Mask", "No-Mask"]
    assert pipeline.primary_gie.config_file == folder / "config_infer_primary_facemask.txt"


def test_the_yaml_example_in_the_docs_loads(tmp_path: Path) -> None:
    docs = Path(__file__).resolve().parents[3] / "docs" / "config.md"
    blocks = docs.read_text().split("```yaml\n")[1:]
    [example] = [b.split("```")[0] for b in blocks if "sources:" in b]
    folder = copy_fixtures(tmp_path, with_models=True)
    (folder / "pipeline.yaml").write_text(example)

    pipeline, diags = read_pipeline_yaml(folder / "pipeline.yaml")

    assert pipeline.primary_gie is not None and pipeline.primary_gie.nvinfer is not None
    assert pipeline.primary_gie.bbox_border_colors[0] == (0.0, 1.0, 0.0, 1.0)
    assert diags.errors == []


def _file_source(uri: str) -> str:
    return MINIMAL.replace(
        "    type: camera_v4l2\n    enable: true\n    camera_width: 640\n"
        "    camera_height: 480\n    camera_fps_n: 30\n",
        f"    type: uri\n    enable: true\n    uri: {uri}\n",
    )


@pytest.mark.parametrize("strict", [False, True])
def test_missing_file_uri_is_reported_on_its_line_like_deepstream_app(
    tmp_path: Path, strict: bool
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(_file_source("file:///nowhere/clip.mp4"))
    diags = Diagnostics()

    pipeline = load_pipeline_yaml(path, diags, strict=strict)

    severity = Severity.ERROR if strict else Severity.WARNING
    [found] = [d for d in diags.items if "named by the URI does not exist" in d.message]
    assert found.severity is severity and "'/nowhere/clip.mp4'" in found.message
    assert (found.field, found.line) == ("sources.0.uri", 5)
    assert (pipeline is None) is strict


def test_relative_file_uri_is_resolved_against_the_yaml_folder(tmp_path: Path) -> None:
    (tmp_path / "clip.mp4").write_bytes(b"")
    path = tmp_path / "p.yaml"
    path.write_text(_file_source("file://clip.mp4"))

    pipeline, diags = read_pipeline_yaml(path)

    assert getattr(pipeline.sources[0], "uri", "") == f"file://{tmp_path / 'clip.mp4'}"
    assert not [d for d in diags.items if "URI" in d.message]
