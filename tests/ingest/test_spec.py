"""Pipeline config → SourceSpec: deepstream-app txt and YAML, and configs ingest must refuse."""

from __future__ import annotations

from pathlib import Path

import pytest
from heron.core.config.diagnostics import ConfigError
from heron.core.config.pipeline_file import load_pipeline
from heron.core.media_uri import MediaKind
from heron.core.plan.sources import SourceConfigError, plan_sources
from heron.v1.stream_pb2 import RtspTransport, SourceType

from tests.ingest.conftest import write_pipeline

APP = """\
[source0]
enable=1
type=1
camera-width=640
camera-height=480
camera-fps-n=30
camera-fps-d=1
camera-v4l2-dev-node=2
drop-frame-interval=2

[source1]
enable=1
type=4
uri=rtsp://cam.local:8554/ds-test
select-rtp-protocol=4
latency=200
rtsp-reconnect-interval-sec=6
rtsp-reconnect-attempts=3

[source2]
enable=0
type=2
uri=file:///nowhere.mp4

[source3]
enable=1
type=3
uri=file://{clip}
num-sources=2

[tests]
file-loop=1

[sink0]
enable=1
type=1
"""


def test_deepstream_app_sources_map_to_specs(clip: Path, tmp_path: Path) -> None:
    app = tmp_path / "app.txt"
    app.write_text(APP.format(clip=clip))
    planned = plan_sources(load_pipeline(app)[0], check_exists=False)

    assert [p.spec.stream_id for p in planned] == ["source-0", "source-1", "source-2", "source-3"]
    camera, rtsp, copy0, copy1 = planned
    assert camera.spec.type == SourceType.SOURCE_TYPE_CAMERA_V4L2
    assert (camera.spec.uri, camera.target.kind, camera.target.url) == (
        "/dev/video2",
        MediaKind.V4L2,
        "/dev/video2",
    )
    assert (camera.spec.width, camera.spec.height, camera.spec.fps_n, camera.spec.fps_d) == (
        640,
        480,
        30,
        1,
    )
    assert camera.spec.drop_frame_interval == 2
    assert not camera.spec.loop  # file-loop is for files only

    assert rtsp.spec.type == SourceType.SOURCE_TYPE_RTSP
    assert rtsp.spec.rtsp_transport == RtspTransport.RTSP_TRANSPORT_TCP
    assert (rtsp.spec.latency_ms, rtsp.read_timeout_s, rtsp.max_attempts) == (200, 6.0, 3)
    assert not rtsp.spec.loop

    for copy, source_id in ((copy0, 2), (copy1, 3)):
        assert copy.spec.type == SourceType.SOURCE_TYPE_MULTI_URI
        assert (copy.spec.source_id, copy.spec.loop, copy.target.url) == (
            source_id,
            True,
            str(clip),
        )
        assert copy.group == "source3"


def test_yaml_pipeline_and_pinned_source_ids(clip: Path, tmp_path: Path) -> None:
    pipeline = write_pipeline(
        tmp_path / "p.yaml",
        {
            0: {"type": "uri", "uri": f"file://{clip}", "source_id": 7},
            1: {"type": "rtsp", "uri": "rtsp://cam/x", "select_rtp_protocol": "auto"},
        },
    )
    planned = plan_sources(load_pipeline(pipeline)[0])
    assert [(p.spec.stream_id, p.spec.source_id) for p in planned] == [
        ("source-7", 7),
        ("source-8", 8),
    ]
    assert planned[1].spec.rtsp_transport == RtspTransport.RTSP_TRANSPORT_UNSPECIFIED
    assert planned[1].read_timeout_s is None  # rtsp-reconnect-interval-sec 0: service default


def test_a_source_ingest_cannot_open_is_refused_by_group(tmp_path: Path) -> None:
    pipeline = write_pipeline(tmp_path / "p.yaml", {0: {"type": "uri", "uri": "file:///no/a.mp4"}})
    with pytest.raises(SourceConfigError, match=r"file '/no/a.mp4' does not exist"):
        plan_sources(load_pipeline(pipeline)[0])


@pytest.mark.parametrize("uri", ["ftp://host/clip.mp4", "gopher://x"])
def test_a_scheme_ingest_cannot_read_is_refused_where_the_file_names_it(
    tmp_path: Path, uri: str
) -> None:
    # Refused as the config loads (config check says it too), not when sources are planned.
    pipeline = write_pipeline(tmp_path / "p.yaml", {0: {"type": "uri", "uri": uri}})
    with pytest.raises(ConfigError) as caught:
        load_pipeline(pipeline)
    scheme = uri.split(":", 1)[0]
    assert f"{pipeline}:" in str(caught.value) and "[sources.0.uri]" in str(caught.value)
    assert f"unsupported scheme {scheme!r}; expected one of file://" in str(caught.value)


def test_every_bad_source_is_reported_at_once(tmp_path: Path) -> None:
    pipeline = write_pipeline(
        tmp_path / "p.yaml",
        {
            0: {"type": "uri", "uri": "file:///gone-too.mp4"},
            3: {"type": "uri", "uri": "file:///gone.mp4"},
        },
    )
    with pytest.raises(SourceConfigError) as caught:
        plan_sources(load_pipeline(pipeline)[0])
    assert "[source0]" in str(caught.value)
    assert "[source3]" in str(caught.value)


def test_duplicate_source_ids_are_refused(clip: Path, tmp_path: Path) -> None:
    pipeline = write_pipeline(
        tmp_path / "p.yaml",
        {
            0: {"type": "multi_uri", "uri": f"file://{clip}", "num_sources": 2},
            1: {"type": "uri", "uri": f"file://{clip}", "source_id": 1},
        },
    )
    with pytest.raises(SourceConfigError, match=r"source ids \[1\] are used by more than one"):
        plan_sources(load_pipeline(pipeline)[0])


@pytest.mark.skipif(Path("/dev/video0").exists(), reason="a V4L2 camera exists here")
def test_absent_camera_is_a_clear_error(tmp_path: Path) -> None:
    camera = {"type": "camera_v4l2", "camera_width": 640, "camera_height": 480, "camera_fps_n": 30}
    pipeline = write_pipeline(tmp_path / "p.yaml", {0: camera})
    with pytest.raises(SourceConfigError, match=r"V4L2 device /dev/video0 does not exist"):
        plan_sources(load_pipeline(pipeline)[0])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sources:\n  0: {type: 9, enable: true}\nsinks:\n  0: {type: fake, enable: true}\n",
         "expected source type 1 (camera_v4l2)"),
        ("sources:\n  0: {type: uri, enable: true, uri: clip.mp4}\n"
         "sinks:\n  0: {type: fake, enable: true}\n", "expected a URI with a scheme"),
        ("sources: {}\nsinks:\n  0: {type: fake, enable: true}\n", "no source is enabled"),
    ],
)  # fmt: skip
def test_malformed_pipeline_files_raise_config_errors_with_lines(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_pipeline(path)[0]
    assert message in str(caught.value)
    assert f"{path}:" in str(caught.value)


@pytest.mark.parametrize(
    ("group", "error", "message"),
    [
        ("type=2\nuri=ftp://host/a.mp4", ConfigError, "app.txt:4: error: [source0.uri]"),
        ("type=9\nuri=file:///a.mp4", ConfigError, "app.txt:3"),
        ("type=2\ndrop-frame-interval=-1\nuri=file:///a.mp4", ConfigError, "app.txt:4"),
    ],
)
def test_malformed_deepstream_sources(
    tmp_path: Path, group: str, error: type[Exception], message: str
) -> None:
    app = tmp_path / "app.txt"
    app.write_text(f"[source0]\nenable=1\n{group}\n\n[sink0]\nenable=1\ntype=1\n")
    with pytest.raises(error) as caught:
        plan_sources(load_pipeline(app)[0])
    assert message in str(caught.value)
