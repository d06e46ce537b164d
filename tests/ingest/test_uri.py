from __future__ import annotations

from pathlib import Path

import pytest
from heron.core.config.pipeline_file import load_pipeline
from heron.core.media_uri import MediaKind, UriError, parse_uri
from heron.core.plan.sources import plan_sources


@pytest.mark.parametrize(
    ("uri", "kind", "url", "live"),
    [
        ("rtsp://cam:554/live", MediaKind.RTSP, "rtsp://cam:554/live", True),
        ("RTSPS://user:pw@cam/s", MediaKind.RTSP, "RTSPS://user:pw@cam/s", True),
        ("https://host/clip.mp4", MediaKind.HTTP, "https://host/clip.mp4", False),
        ("http://host:8000/a.mkv", MediaKind.HTTP, "http://host:8000/a.mkv", False),
        ("lavfi://testsrc2=size=64x48:rate=30,realtime", MediaKind.LAVFI,
         "testsrc2=size=64x48:rate=30,realtime", True),
        ("lavfi:testsrc2=size=64x48", MediaKind.LAVFI, "testsrc2=size=64x48", False),
    ],
)  # fmt: skip
def test_remote_and_generated_sources(uri: str, kind: MediaKind, url: str, live: bool) -> None:
    target = parse_uri(uri)
    assert (target.kind, target.url, target.live) == (kind, url, live)
    assert target.format == ("lavfi" if kind is MediaKind.LAVFI else None)


@pytest.mark.parametrize("form", ["file://{path}", "{path}", "file://{quoted}"])
def test_local_files_in_every_form(tmp_path: Path, form: str) -> None:
    clip = tmp_path / "my clip.mp4"
    clip.write_bytes(b"x")
    uri = form.format(path=clip, quoted=str(clip).replace(" ", "%20"))
    target = parse_uri(uri)
    assert (target.kind, target.url, target.live) == (MediaKind.FILE, str(clip), False)


def test_devices_are_live_v4l2() -> None:
    for uri in ("/dev/video3", "v4l2:///dev/video3"):
        target = parse_uri(uri, check_exists=False)
        assert (target.kind, target.url, target.format, target.live) == (
            MediaKind.V4L2,
            "/dev/video3",
            "v4l2",
            True,
        )


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("ftp://host/clip.mp4", "unsupported scheme 'ftp'"),
        ("srt://host:9000", "unsupported scheme 'srt'"),
        ("", "empty source URI"),
        ("rtsp:///nohost", "expected a host"),
        ("https:///clip.mp4", "expected a host"),
        ("lavfi://", "expected a filter graph"),
        ("v4l2:///dev/sda", "expected a V4L2 device /dev/videoN, got '/dev/sda'"),
        ("file:///no/such/clip.mp4", "file '/no/such/clip.mp4' does not exist"),
        ("/no/such/clip.mp4", "file '/no/such/clip.mp4' does not exist"),
        ("/dev/video97", "V4L2 device /dev/video97 does not exist"),
        ("weird:thing", "expected one of file://"),
    ],
)
def test_bad_uris_say_what_was_expected(uri: str, message: str) -> None:
    with pytest.raises(UriError) as caught:
        parse_uri(uri)
    assert message in str(caught.value)
    assert repr(uri) in str(caught.value) or not uri


def test_a_folder_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(UriError, match="is not a file"):
        parse_uri(f"file://{tmp_path}")


@pytest.mark.parametrize(
    "form",
    ["file:{path}", "file://localhost{path}", "FILE:{path}", "file:{quoted}"],
)
def test_rfc_8089_file_uris_open_the_named_file(tmp_path: Path, form: str) -> None:
    clip = tmp_path / "my clip.mp4"
    clip.write_bytes(b"x")
    uri = form.format(path=clip, quoted=str(clip).replace(" ", "%20"))

    target = parse_uri(uri)

    assert (target.kind, target.url, target.live) == (MediaKind.FILE, str(clip), False)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("file:", "expected a path after 'file:'"),
        ("file://", "expected a path after 'file://'"),
        ("file:clip.mp4", "not an absolute file URI"),
        ("file://clip.mp4", "names the host 'clip.mp4'"),
        ("file://nas/share/clip.mp4", "names the host 'nas', but only local files can be opened"),
        ("file:///videos/take#2.mp4", "may not contain '#'"),
    ],
)
def test_file_uris_gstreamer_refuses_are_refused(uri: str, message: str) -> None:
    with pytest.raises(UriError) as caught:
        parse_uri(uri, check_exists=False)

    assert str(caught.value).startswith(f"source URI {uri!r}: ")
    assert message in str(caught.value)


def test_face_mask_sample_config_opens_its_clip() -> None:
    """NVIDIA's face-mask sample writes `uri=file:/mnt/...`: ingest opens that absolute path."""
    app = (
        Path(__file__).resolve().parents[1]
        / "fixtures/deepstream/face-mask-detection/deepstream_app_source1_video_masknet_gpu.txt"
    )

    [planned] = plan_sources(load_pipeline(app)[0], check_exists=False)

    clip = "/mnt/8c3f68c9-a08a-400b-8c80-99c5fee26a06/face-mask-videos/C0074.MP4"
    assert (planned.target.kind, planned.target.url) == (MediaKind.FILE, clip)
    assert planned.spec.uri == f"file://{clip}"
