"""The check of AddSource's URI (heron.control.source_uris): run-time file sources only from
inside the operator's media roots, symlinks followed; lavfi graphs without file-reading
filters; network and camera URIs untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
from heron.control.source_uris import check_added_uri
from heron.core.grpc import InvalidArgumentError
from heron.core.media_uri import parse_uri
from heron.core.plan.settings.control import ControlSettings, PipelineApiSettings
from pydantic import ValidationError


@pytest.fixture
def media(tmp_path: Path) -> Path:
    root = tmp_path / "media"
    (root / "lobby").mkdir(parents=True)
    (root / "lobby" / "door.mp4").write_bytes(b"clip")
    (tmp_path / "secret.txt").write_text("not for clients")
    return root


def refusal(uri: str, roots: list[Path]) -> str:
    with pytest.raises(InvalidArgumentError) as caught:
        check_added_uri(uri, roots)
    assert caught.value.field == "source.uri"
    return str(caught.value)


@pytest.mark.parametrize("form", ["file://{path}", "file:{path}", "{path}"])
def test_a_file_inside_a_root_goes_to_ingest_as_its_resolved_file_uri(
    media: Path, form: str
) -> None:
    path = media / "lobby" / "door.mp4"
    assert check_added_uri(form.format(path=path), [media]) == f"file://{path}"


def test_a_file_reached_through_a_link_inside_the_root_is_sent_as_the_real_file(
    media: Path,
) -> None:
    (media / "latest.mp4").symlink_to(media / "lobby" / "door.mp4")
    (media / "cams").symlink_to(media / "lobby", target_is_directory=True)
    real = f"file://{media / 'lobby' / 'door.mp4'}"
    assert check_added_uri(f"file://{media / 'latest.mp4'}", [media]) == real
    assert check_added_uri(f"file://{media / 'cams' / 'door.mp4'}", [media]) == real


def test_a_root_that_is_itself_a_link_may_be_named_either_way(tmp_path: Path, media: Path) -> None:
    link = tmp_path / "clips"
    link.symlink_to(media, target_is_directory=True)
    real = f"file://{media / 'lobby' / 'door.mp4'}"
    assert check_added_uri(f"file://{link / 'lobby' / 'door.mp4'}", [link]) == real
    assert check_added_uri(f"file://{media / 'lobby' / 'door.mp4'}", [link]) == real


def test_escaped_characters_survive_the_round_trip(media: Path) -> None:
    odd = media / "50% #1.mp4"
    odd.write_bytes(b"clip")
    sent = check_added_uri(str(odd), [media])
    assert sent == f"file://{media}/50%25%20%231.mp4"
    assert parse_uri(sent).url == str(odd)  # what ingest opens


def test_without_media_roots_every_file_is_refused_naming_the_setting(media: Path) -> None:
    message = refusal(f"file://{media / 'lobby' / 'door.mp4'}", [])
    assert "file sources cannot be added at run time" in message
    assert "pipeline_api.media_roots (HERON_PIPELINE_API__MEDIA_ROOTS)" in message


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("file:///etc/shadow", "'/etc/shadow' is not inside a media root"),
        ("/etc/passwd", "'/etc/passwd' is not inside a media root"),
        ("{root}/../secret.txt", "'..' is not allowed in a file path"),
        ("file://{root}/lobby/../../secret.txt", "'..' is not allowed in a file path"),
        ("{root}/lobby/..", "'..' is not allowed"),
        ("lobby/door.mp4", "expected an absolute path inside a media root"),
        ("{root}-other/clip.mp4", "is not inside a media root"),  # a sibling sharing a prefix
        ("{root}/lobby/missing.mp4", "/lobby/missing.mp4' does not exist"),
        ("{root}/lobby", "/lobby' is not a regular file"),
    ],
)
def test_paths_outside_a_root_or_unusable_are_refused(media: Path, uri: str, expected: str) -> None:
    assert expected in refusal(uri.format(root=media), [media])


def test_a_symlink_inside_the_root_that_leads_out_is_refused(tmp_path: Path, media: Path) -> None:
    (media / "shadow.mp4").symlink_to(tmp_path / "secret.txt")
    (media / "up").symlink_to(tmp_path, target_is_directory=True)
    (media / "dangling.mp4").symlink_to(tmp_path / "nowhere")
    for link in ("shadow.mp4", "up/secret.txt"):
        message = refusal(f"file://{media / link}", [media])
        assert "leads outside the media roots" in message
        assert str(tmp_path / "secret.txt") not in message  # the link's target is not told
    assert "does not exist" in refusal(f"file://{media / 'dangling.mp4'}", [media])


def test_a_symlink_loop_is_refused(media: Path) -> None:
    (media / "a.mp4").symlink_to(media / "b.mp4")
    (media / "b.mp4").symlink_to(media / "a.mp4")
    assert "cannot resolve" in refusal(f"file://{media / 'a.mp4'}", [media])


def test_any_of_several_roots_will_do(tmp_path: Path, media: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "gate.mp4").write_bytes(b"clip")
    assert check_added_uri(str(other / "gate.mp4"), [media, other]) == f"file://{other}/gate.mp4"


@pytest.mark.parametrize(
    "uri",
    [
        "rtsp://camera:554/stream",
        "rtsps://camera/stream",
        "http://host/clip.mp4",
        "https://host/clip.mp4",
        "/dev/video0",
        "v4l2:///dev/video1",
        "lavfi://testsrc2=size=320x240:rate=8,realtime",
        "lavfi:smptebars=size=640x480 , scale=320:240,format=yuv420p",
        "lavfi://[in]testsrc@a=rate=5[out];nullsrc",
        "ftp://not/a/scheme",  # ingest refuses it with the config's words
    ],
)
def test_other_schemes_pass_unchanged_even_without_roots(uri: str) -> None:
    assert check_added_uri(uri, []) == uri


@pytest.mark.parametrize(
    ("graph", "name"),
    [
        ("movie=/etc/shadow", "movie"),
        ("testsrc2,drawtext=textfile=/etc/shadow", "drawtext"),
        ("testsrc2;amovie=/etc/passwd", "amovie"),
        ("[x]life=filename=/etc/passwd", "life"),
        ("testsrc2,'movie'=/etc/shadow", "'movie'"),
        ("testsrc2,mo\\vie=/etc/shadow", "mo\\vie"),
        ("testsrc2=size='320x240,drawtext=textfile=/etc/shadow'", "drawtext"),
    ],
)
def test_lavfi_graphs_with_filters_that_may_read_files_are_refused(graph: str, name: str) -> None:
    message = refusal(f"lavfi://{graph}", [Path("/")])
    assert f"lavfi filter {name!r} is not allowed at run time" in message


def test_media_roots_must_be_absolute() -> None:
    assert PipelineApiSettings(media_roots=(Path("/media"),)).media_roots == (Path("/media"),)
    with pytest.raises(ValidationError, match=r"media_roots\[1\]: expected an absolute"):
        PipelineApiSettings.model_validate({"media_roots": ["/media", "clips"]})


def test_media_roots_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERON_PIPELINE_API__MEDIA_ROOTS", '["/media", "/srv/clips"]')
    settings = ControlSettings()
    assert settings.pipeline_api.media_roots == (Path("/media"), Path("/srv/clips"))
