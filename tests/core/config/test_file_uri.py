"""`file:` URIs: the forms GStreamer accepts, deepstream-app's relative form, and refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
from heron.core.config.deepstream import load_deepstream_app
from heron.core.config.diagnostics import Diagnostics, Severity
from heron.core.config.file_uri import (
    FileUriError,
    canonical_file_uri,
    file_uri_path,
    resolve_config_file_uri,
)
from heron.core.config.sources import UriSource
from heron.core.config.yaml_loader import load_pipeline_yaml
from pydantic import ValidationError

APP = """\
[source0]
enable=1
type=2
uri={uri}

[sink0]
enable=1
type=1
"""


@pytest.mark.parametrize(
    ("uri", "path"),
    [
        ("file:///videos/clip.mp4", "/videos/clip.mp4"),
        ("file:/videos/clip.mp4", "/videos/clip.mp4"),  # RFC 8089's one-slash form
        ("file://localhost/videos/clip.mp4", "/videos/clip.mp4"),
        ("FILE://LocalHost/videos/clip.mp4", "/videos/clip.mp4"),
        ("file:/videos/my%20clip.mp4", "/videos/my clip.mp4"),
        ("file:///videos/a?b.mp4", "/videos/a?b.mp4"),  # no query in a file name: GLib agrees
    ],
)
def test_accepted_forms_name_a_local_path(uri: str, path: str) -> None:
    assert file_uri_path(uri) == path
    assert canonical_file_uri(uri) == "file://" + path.replace(" ", "%20")


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("file:", "expected a path after 'file:'"),
        ("file://", "expected a path after 'file://'"),
        ("file://localhost", "expected a path after 'file://localhost'"),
        ("file:clip.mp4", "not an absolute file URI"),
        ("file://nas/videos/clip.mp4", "names the host 'nas', but only local files can be opened"),
        ("file:///videos/take#2.mp4", "may not contain '#'"),
        ("file:///videos/100%.mp4", "not followed by two hex digits"),
        ("file:///videos/a%2Fb.mp4", "escapes '/' or NUL"),
    ],
)
def test_what_gstreamer_refuses_is_refused_with_the_reason(uri: str, message: str) -> None:
    with pytest.raises(FileUriError, match=message.replace("?", r"\?")):
        file_uri_path(uri)


@pytest.mark.parametrize(
    ("uri", "resolved"),
    [
        ("file://clip.mp4", "file:///configs/clip.mp4"),  # deepstream-app: config-relative
        ("file://../data/clip.mp4", "file:///data/clip.mp4"),
        ("file://nas/clip.mp4", "file:///configs/nas/clip.mp4"),  # a folder, to deepstream-app
        ("file:/abs/clip.mp4", "file:///abs/clip.mp4"),
        ("file://localhost/abs/clip.mp4", "file:///abs/clip.mp4"),
        ("file:///abs/clip.mp4", "file:///abs/clip.mp4"),
        ("file:clip.mp4", "file:clip.mp4"),  # refused later, on the uri line
        ("file:", "file:"),
    ],
)
def test_config_uris_resolve_as_deepstream_app_reads_them(uri: str, resolved: str) -> None:
    assert resolve_config_file_uri(uri, Path("/configs")) == resolved


def test_model_stores_one_spelling() -> None:
    source = UriSource(type="uri", uri="file:/videos/clip.mp4")
    assert source.uri == "file:///videos/clip.mp4"
    with pytest.raises(ValidationError, match="not an absolute file URI"):
        UriSource(type="uri", uri="file:clip.mp4")


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("file:", "expected a path after 'file:', as in file:///abs/clip.mp4, file:/abs/clip.mp4 "
         "or file://localhost/abs/clip.mp4; found 'file:'"),
        ("file:clip.mp4", "not an absolute file URI"),
        ("file:///a#b.mp4", "may not contain '#'"),
    ],
)  # fmt: skip
def test_bad_file_uri_in_a_config_is_an_error_on_its_line(
    tmp_path: Path, uri: str, message: str
) -> None:
    path = tmp_path / "app.txt"
    path.write_text(APP.format(uri=uri))
    diags = Diagnostics()

    assert load_deepstream_app(path, diags) is None

    [error] = [d for d in diags.items if d.severity is Severity.ERROR]
    assert (error.line, error.field) == (4, "source0.uri")
    assert message in error.message


def test_existing_file_with_escapes_is_found(tmp_path: Path) -> None:
    clip = tmp_path / "my clip.mp4"
    clip.write_bytes(b"x")
    path = tmp_path / "app.txt"
    path.write_text(APP.format(uri=f"file:{str(clip).replace(' ', '%20')}"))
    diags = Diagnostics()

    pipeline = load_deepstream_app(path, diags)

    assert pipeline is not None
    assert getattr(pipeline.sources[0], "uri", "") == f"file://{tmp_path}/my%20clip.mp4"
    assert diags.items == []


def test_yaml_pipeline_reads_the_same_forms(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"x")
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        "sources:\n"
        f"  0: {{type: uri, enable: true, uri: 'file:{clip}'}}\n"
        f"  1: {{type: uri, enable: true, uri: 'file://localhost{clip}'}}\n"
        "  2: {type: uri, enable: true, uri: 'file://clip.mp4'}\n"
        "sinks:\n  0: {type: 1, enable: true}\n"
    )
    diags = Diagnostics()

    pipeline = load_pipeline_yaml(path, diags)

    assert pipeline is not None and diags.items == []
    assert {getattr(s, "uri", "") for s in pipeline.sources.values()} == {f"file://{clip}"}
