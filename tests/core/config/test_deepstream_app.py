"""The deepstream-app loader on the reference face-mask pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest
from heron.core.config.deepstream import load_deepstream_app, read_deepstream_app
from heron.core.config.diagnostics import Diagnostics
from heron.core.config.models import Pipeline
from heron.core.config.nvinfer_models import NetworkMode
from heron.core.config.sinks import EglSink, FakeSink, FileSink, MsgBrokerSink, RtspSink
from heron.core.config.sources import CameraSource, MultiUriSource, RtpProtocol, RtspSource

from tests.core.config.deepstream_helpers import APP, FIXTURES, copy_fixtures, edit, line_of


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return copy_fixtures(tmp_path, with_models=True)


@pytest.fixture
def pipeline(folder: Path) -> Pipeline:
    loaded, _ = read_deepstream_app(folder / APP)
    return loaded


def test_sources(pipeline: Pipeline, folder: Path) -> None:
    camera, recording = pipeline.sources[0], pipeline.sources[1]
    assert isinstance(camera, CameraSource)
    assert camera.enable
    assert (camera.camera_width, camera.camera_height) == (640, 480)
    assert (camera.camera_fps_n, camera.camera_fps_d) == (30, 1)
    assert camera.device == "/dev/video0"
    assert isinstance(recording, MultiUriSource)
    assert not recording.enable
    assert recording.num_sources == 2
    # Relative file:// URIs are resolved against the config's folder, as deepstream-app does.
    assert recording.uri == f"file://{folder.parents[1] / 'data' / 'facemask_sample.mp4'}"
    assert pipeline.stream_count == 1


def test_streammux_tiler_osd(pipeline: Pipeline) -> None:
    mux = pipeline.streammux
    assert (mux.batch_size, mux.width, mux.height) == (4, 960, 544)
    assert mux.live_source and mux.batched_push_timeout == 40000
    tiler = pipeline.tiled_display
    assert tiler.enable and (tiler.rows, tiler.columns) == (1, 2)
    assert (tiler.width, tiler.height) == (1280, 480)  # 'width=1280 #640'
    osd = pipeline.osd
    assert osd.enable and osd.border_width == 2
    assert osd.text_color == (1.0, 1.0, 1.0, 1.0)  # '1;1;1;1;' with GLib's trailing ';'
    assert osd.text_bg_color == (0.3, 0.3, 0.3, 1.0)
    assert osd.clock_color == (1.0, 0.0, 0.0, 0.0)


def test_primary_gie_with_its_nvinfer_config(pipeline: Pipeline, folder: Path) -> None:
    gie = pipeline.primary_gie
    assert gie is not None and gie.enable
    assert gie.bbox_border_colors == {0: (0.0, 1.0, 0.0, 1.0), 1: (1.0, 0.0, 0.0, 1.0)}
    assert gie.config_file == folder / "config_infer_primary_facemask.txt"
    assert gie.unique_id == 1
    assert gie.nvinfer is not None
    assert gie.nvinfer.property.network_mode is NetworkMode.INT8
    assert gie.nvinfer.labels == ["Mask", "No-Mask"]
    assert gie.nvinfer.class_attrs[1].eps == 0.5


def test_tracker_sinks_tests(pipeline: Pipeline) -> None:
    tracker = pipeline.tracker
    assert tracker.enable
    assert tracker.ll_lib_file == Path("/opt/nvidia/deepstream/deepstream/lib/libnvds_mot_klt.so")
    assert (tracker.tracker_width, tracker.tracker_height) == (640, 384)
    assert tracker.enable_batch_process and tracker.display_tracking_id
    egl, rtsp = pipeline.sinks[0], pipeline.sinks[1]
    assert isinstance(egl, EglSink) and not egl.enable  # disabled: kept as written
    assert isinstance(rtsp, RtspSink) and rtsp.enable
    assert (rtsp.rtsp_port, rtsp.udp_port, rtsp.bitrate) == (8554, 5400, 4_000_000)
    assert pipeline.tests.file_loop
    assert pipeline.application.enable_perf_measurement


def test_reference_scenario_findings_are_only_the_expected_warnings(folder: Path) -> None:
    _, diags = read_deepstream_app(folder / APP)

    assert diags.errors == []
    assert sorted(d.field for d in diags.warnings) == [
        "streammux.batch-size",  # batch 4 for one enabled camera
        "tracker.ll-lib-file",  # DeepStream is not installed here
    ]


@pytest.mark.parametrize(("headless", "kind"), [(True, FakeSink), (False, EglSink)])
def test_enabled_egl_sink_becomes_fake_when_headless(
    folder: Path, headless: bool, kind: type
) -> None:
    edit(folder / APP, b"enable=0\n#Type - 1=FakeSink 2=EglSink", b"enable=1\n#Type")
    diags = Diagnostics()

    pipeline = load_deepstream_app(folder / APP, diags, headless=headless)

    assert pipeline is not None
    assert isinstance(pipeline.sinks[0], kind)
    warned = [d for d in diags.warnings if "runs as type=1 (fake)" in d.message]
    assert len(warned) == int(headless)


def test_file_rtsp_source_and_broker_sink(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "libnvds_redis_proto.so").write_bytes(b"")
    path = tmp_path / "app.txt"
    path.write_text(
        "[source2]\nenable=1\ntype=4\nuri=rtsp://10.0.0.5:554/stream1\nlatency=200\n"
        "select-rtp-protocol=4\nrtsp-reconnect-interval-sec=10\n"
        "[sink0]\nenable=1\ntype=3\ncontainer=2\ncodec=2\nbitrate=2000000\n"
        "output-file=out/result.mkv\n"
        "[sink3]\nenable=1\ntype=6\nmsg-broker-proto-lib=libnvds_redis_proto.so\n"
        "msg-broker-conn-str=localhost;6379\ntopic=facemask\n"
        "[message-broker]\nhostname=localhost\nport=6379\npassword=hunter2\n"
    )

    pipeline, diags = read_deepstream_app(path)

    source = pipeline.sources[2]
    assert isinstance(source, RtspSource)
    assert (source.latency, source.rtsp_reconnect_interval_sec) == (200, 10)
    assert source.select_rtp_protocol is RtpProtocol.TCP
    file_sink, broker = pipeline.sinks[0], pipeline.sinks[3]
    assert isinstance(file_sink, FileSink)
    assert file_sink.output_file == tmp_path / "out" / "result.mkv"
    assert (file_sink.container.value, file_sink.codec.value) == ("mkv", "h265")
    assert isinstance(broker, MsgBrokerSink)
    assert broker.msg_broker_proto_lib == tmp_path / "libnvds_redis_proto.so"
    assert (broker.msg_broker_conn_str, broker.topic) == ("localhost;6379", "facemask")
    assert pipeline.message_broker is not None
    assert pipeline.message_broker.port == 6379
    assert all("hunter2" not in str(d) for d in diags.items)


def test_fixture_file_itself_loads_from_the_repository() -> None:
    diags = Diagnostics()

    pipeline = load_deepstream_app(FIXTURES / APP, diags, headless=True)

    assert pipeline is not None
    assert diags.errors == []
    assert line_of(FIXTURES / APP, b"[primary-gie]") > 0


def test_a_syntax_error_means_no_pipeline_but_all_findings(folder: Path) -> None:
    edit(folder / APP, b"font=Serif", b"font Serif")
    diags = Diagnostics()

    assert load_deepstream_app(folder / APP, diags, headless=True) is None
    assert [d.line for d in diags.errors] == [line_of(folder / APP, b"font Serif")]


def test_unreadable_file_is_one_error(tmp_path: Path) -> None:
    diags = Diagnostics()

    assert load_deepstream_app(tmp_path / "absent.txt", diags) is None
    assert [(d.line, "cannot read" in d.message) for d in diags.items] == [(0, True)]
