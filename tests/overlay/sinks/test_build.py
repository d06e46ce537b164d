"""[sinkN] groups become overlay sinks; groups the overlay cannot run fail with clear errors."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import av
import numpy as np
import pytest
from heron.core.config.sinks import RtspSink
from heron.overlay.sinks.base import SinkConfigError
from heron.overlay.sinks.build import SinkOptions, build_sinks
from heron.overlay.sinks.fake import FakeSink
from heron.overlay.sinks.file import FileVideoSink
from heron.overlay.sinks.video_server import RtspVideoSink

from tests.overlay.app_config import load_app


def test_enabled_sinks_are_built_in_order(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pipeline = load_app(tmp_path, f"""
[sink0]
enable=1
type=3
output-file={tmp_path}/out.mp4
enc-type=1
[sink1]
enable=0
type=1
[sink2]
enable=1
type=1
link-to-demux=1
source-id=1
""")  # fmt: skip
    sinks = build_sinks(pipeline, SinkOptions())
    assert [(b.sink.name, b.sink.kind, b.pixels, b.source_id) for b in sinks] == [
        ("sink0", "file", True, None),
        ("sink2", "fake", True, 1),
    ]
    assert isinstance(sinks[0].sink, FileVideoSink) and isinstance(sinks[1].sink, FakeSink)


def test_egl_without_display_runs_as_fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with caplog.at_level(logging.WARNING):
        sinks = build_sinks(load_app(tmp_path, "[sink0]\nenable=1\ntype=2\n"), SinkOptions())
    assert sinks[0].sink.kind == "fake"


@pytest.mark.parametrize(
    ("group", "message"),
    [("type=3\noutput-file={tmp}/no/such/dir/out.mp4",
      r"sink0 output-file: expected a file in an existing folder"),
     ("type=3\noutput-file={tmp}/out.mp4\nprofile=1",
      r"\[sink0\] profile: expected 0 \(baseline\), 2 \(main\) or 4 \(high\) for H.264, got 1"),
     ("type=4\ncodec=3", r"\[sink0\] \(type=4 rtsp\): sink codec: expected 1 \(h264\) or 2"),
     ("type=4\nprofile=3", r"\[sink0\] \(type=4 rtsp\): sink profile: expected 0"),
     ("type=6\nmsg-broker-proto-lib=/x/libnvds_foo.so\ntopic=t\nmsg-broker-conn-str=h;1",
      r"\[sink0\] \(type=6 msgbroker\) msg-broker-proto-lib: expected one of"),
     ("type=6\nmsg-broker-proto-lib=/x/libnvds_redis_proto.so\nmsg-broker-conn-str=h;x;\ntopic=t",
      r"msg-broker-conn-str: expected a port 1-65535 after the host, got 'x'")],
)  # fmt: skip
def test_malformed_sinks_are_refused(tmp_path: Path, group: str, message: str) -> None:
    pipeline = load_app(tmp_path, "[sink0]\nenable=1\n" + group.format(tmp=tmp_path) + "\n")
    with pytest.raises(SinkConfigError, match=message):
        build_sinks(pipeline, SinkOptions())


def test_a_pipeline_without_enabled_sinks_is_refused(tmp_path: Path) -> None:
    loaded = load_app(tmp_path, "[sink0]\nenable=1\ntype=1\n")
    # The loader itself refuses a file without enabled sinks; a model built in code may not.
    off = {n: s.model_copy(update={"enable": False}) for n, s in loaded.sinks.items()}
    pipeline = loaded.model_copy(update={"sinks": off})
    with pytest.raises(SinkConfigError, match=r"\[sinkN\]: expected at least one enabled sink"):
        build_sinks(pipeline, SinkOptions())


def test_rtsp_sink_serves_the_frames(rtsp_port: int) -> None:
    sink = RtspVideoSink("sink1", RtspSink(type="rtsp", enable=True, rtsp_port=rtsp_port,
                                           enc_type=1), fps=30, size=(320, 240))  # fmt: skip
    frame = np.zeros((240, 320, 3), np.uint8)
    frame[80:160, 120:200] = (0, 0, 255)
    done = threading.Event()

    def feed() -> None:
        while not done.wait(1 / 30):
            sink.write(frame, [])

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    try:
        assert sink.url == f"rtsp://127.0.0.1:{rtsp_port}/ds-test"
        viewer = av.open(sink.url, options={"rtsp_transport": "tcp"}, timeout=(10, 10))
        first = next(viewer.decode(video=0)).to_ndarray(format="bgr24")
        viewer.close()
    finally:
        done.set()
        thread.join()
        sink.close()
    assert first.shape == (240, 320, 3) and first[120, 160, 2] > 200
