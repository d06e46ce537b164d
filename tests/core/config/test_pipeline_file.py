"""load_pipeline: one reader of a pipeline config for every service and `heron run`."""

from __future__ import annotations

from pathlib import Path

import pytest
from heron.core.config.diagnostics import ConfigError
from heron.core.config.pipeline_file import load_pipeline, warning_line

APP = """[application]
enable-perf-measurement=1

[source0]
enable=1
type=3
uri={uri}
bogus-key=3

[sink0]
enable=1
type=1
"""


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"not decoded by the loader")
    return path


def test_a_deepstream_app_file_loads_with_its_warnings(tmp_path: Path, clip: Path) -> None:
    path = tmp_path / "app.txt"
    path.write_text(APP.format(uri=clip.as_uri()))
    pipeline, findings = load_pipeline(path)
    assert pipeline.stream_count == 1
    [warning] = findings.warnings
    assert warning_line(warning) == (
        f"warning: {path}:8: [source0.bogus-key] unknown key 'bogus-key'; it is ignored"
    )


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".YAML"])
def test_yaml_is_chosen_by_suffix(tmp_path: Path, clip: Path, suffix: str) -> None:
    path = tmp_path / f"pipeline{suffix}"
    path.write_text(
        f"sources: {{0: {{type: uri, enable: true, uri: '{clip.as_uri()}'}}}}\n"
        "sinks: {0: {type: fake, enable: true}}\n"
    )
    pipeline, findings = load_pipeline(path)
    assert pipeline.stream_count == 1
    assert findings.errors == []


@pytest.mark.parametrize(
    ("name", "body", "where", "message"),
    [
        ("gone.txt", None, "gone.txt", "cannot read the file"),
        ("bad.txt", "[application]\nnot a key line\n", "bad.txt:2", "expected 'key=value'"),
        ("bad.yaml", "sources: [\n", "bad.yaml:2", "not valid YAML"),
        ("empty.txt", "", "empty.txt", "no source is enabled"),
    ],
)
def test_a_missing_or_broken_file_names_file_and_line(
    tmp_path: Path, name: str, body: str | None, where: str, message: str
) -> None:
    path = tmp_path / name
    if body is not None:
        path.write_text(body)
    with pytest.raises(ConfigError) as raised:
        load_pipeline(path)
    text = str(raised.value)
    assert f"{tmp_path / where}" in text
    assert message in text
