"""Sources over real media: file loop timestamps, live end-of-stream as a disconnect, PyAV."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from fractions import Fraction
from itertools import islice, pairwise
from pathlib import Path

import numpy as np
import pytest
from heron.core.media_uri import MediaKind, MediaTarget, parse_uri
from heron.core.plan.sources import PlannedSource
from heron.ingest.decoders import PyAvDecoder
from heron.ingest.decoding import DecodedFrame, OpenRequest
from heron.ingest.errors import SourceFailedError, SourceUnavailableError
from heron.ingest.sources import FileSource, LiveSource, camera_options, rtsp_options, source_for
from heron.v1.stream_pb2 import RtspTransport, SourceSpec

from tests.ingest.clips import make_clip, read_number


def _planned(uri: str, **spec: object) -> PlannedSource:
    return PlannedSource(
        SourceSpec(stream_id="s", uri=uri, **spec),  # type: ignore[arg-type]
        parse_uri(uri),
        "source0",
        None,
        -1,
    )


def test_pyav_decodes_bgr_frames_with_time(clip: Path) -> None:
    frames = list(PyAvDecoder().frames(OpenRequest(parse_uri(str(clip)))))
    assert len(frames) == 48
    assert all(f.image.shape == (240, 320, 3) and f.image.dtype == np.uint8 for f in frames)
    assert [read_number(f.image) for f in frames] == list(range(48))
    assert frames[0].time_base == Fraction(1, 24) or frames[0].time_base is not None
    # What heron_ingest_source_frames_per_second and stage="ingest.decode" report.
    assert {f.source_fps for f in frames} == {24.0}
    assert all(0 < f.decode_s < 1 for f in frames)


@pytest.mark.parametrize(("width", "height"), [(321, 241), (64, 48)])
def test_odd_and_small_sizes_decode(tmp_path: Path, width: int, height: int) -> None:
    path = make_clip(tmp_path / "c.mkv", 3, width, height, codec="mpeg4")
    frames = list(PyAvDecoder().frames(OpenRequest(parse_uri(str(path)))))
    assert [f.image.shape for f in frames] == [(height, width, 3)] * 3


def test_file_loop_shifts_timestamps_of_each_pass(clip: Path) -> None:
    source = FileSource(_planned(str(clip), loop=True), PyAvDecoder())
    frames = list(islice(source.frames(), 48 * 2 + 5))
    numbers = [read_number(f.image) for f in frames]
    assert numbers == list(range(48)) * 2 + list(range(5))
    pts = [f.pts for f in frames]
    assert all(b is not None and a is not None and b > a for a, b in pairwise(pts))
    assert source.passes == 2
    source.reset()
    assert next(iter(source.frames())).pts == frames[0].pts


def test_a_file_without_video_fails_permanently(tmp_path: Path) -> None:
    path = tmp_path / "audio.wav"
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 800), np.int16), format="s16", layout="mono"
        )
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
    with pytest.raises(SourceFailedError, match="has no video stream"):
        list(FileSource(_planned(str(path)), PyAvDecoder()).frames())


def test_garbage_file_fails_permanently(tmp_path: Path) -> None:
    path = tmp_path / "garbage.mp4"
    path.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(SourceFailedError, match="cannot open file source"):
        list(FileSource(_planned(str(path)), PyAvDecoder()).frames())


class _Finite:
    name = "finite"

    def frames(self, request: OpenRequest) -> Iterator[DecodedFrame]:
        for i in range(3):
            yield DecodedFrame(np.zeros((2, 2, 3), np.uint8), i, None)


def test_live_source_end_of_stream_is_a_disconnect() -> None:
    target = MediaTarget(MediaKind.RTSP, "rtsp://cam/x")
    source = LiveSource(OpenRequest(target), SourceSpec(stream_id="cam"), _Finite())
    got: list[DecodedFrame] = []
    with pytest.raises(SourceUnavailableError, match="live source ended its stream"):
        for frame in source.frames():
            got.append(frame)
    assert len(got) == 3


def test_lavfi_realtime_is_live_and_decodes() -> None:
    planned = _planned("lavfi://testsrc2=size=160x120:rate=30,realtime")
    source = source_for(planned, PyAvDecoder(), read_timeout_s=4)
    assert source.live
    frames = list(islice(source.frames(), 5))
    assert [f.image.shape for f in frames] == [(120, 160, 3)] * 5


def test_live_options() -> None:
    spec = SourceSpec(rtsp_transport=RtspTransport.RTSP_TRANSPORT_TCP, latency_ms=200)
    assert rtsp_options(spec) == {
        "fflags": "nobuffer",
        "flags": "low_delay",
        "analyzeduration": "0",
        "probesize": "32",
        "rtsp_transport": "tcp",
        "max_delay": "200000",
    }
    assert "rtsp_transport" not in rtsp_options(SourceSpec())
    assert camera_options(SourceSpec(width=640, height=480, fps_n=30, fps_d=1)) == {
        "video_size": "640x480",
        "framerate": "30/1",
    }


def test_live_read_timeout_is_halved_for_ffmpeg() -> None:
    planned = PlannedSource(
        SourceSpec(stream_id="cam"), parse_uri("rtsp://cam/x"), "source0", 6.0, -1
    )
    source = source_for(planned, PyAvDecoder(), read_timeout_s=10)
    assert isinstance(source, LiveSource)
    assert source.request.timeout_s == 3.0  # FFmpeg fires after about twice the value
    default = PlannedSource(
        SourceSpec(stream_id="cam"), parse_uri("rtsp://cam/x"), "source0", None, -1
    )
    fallback = source_for(default, PyAvDecoder(), read_timeout_s=10)
    assert isinstance(fallback, LiveSource)
    assert fallback.request.timeout_s == 5.0


def test_nvdec_without_pynvvideocodec_is_a_clear_permanent_error(clip: Path) -> None:
    if importlib.util.find_spec("PyNvVideoCodec") is not None:
        pytest.skip("PyNvVideoCodec is installed here; the GPU bench covers it")
    from heron.core.plan.settings.ingest import DecoderKind
    from heron.ingest.decoders import decoder_for

    decoder = decoder_for(DecoderKind.NVDEC)
    with pytest.raises(SourceFailedError, match="decoder 'nvdec' needs PyNvVideoCodec"):
        list(decoder.frames(OpenRequest(parse_uri(str(clip)))))


@pytest.mark.skipif(not Path("/dev/video0").exists(), reason="no V4L2 camera on this machine")
def test_v4l2_camera_gives_frames_of_the_asked_size() -> None:
    spec = SourceSpec(stream_id="cam", width=640, height=480, fps_n=30, fps_d=1)
    planned = PlannedSource(spec, parse_uri("/dev/video0"), "source0", None, -1)
    source = source_for(planned, PyAvDecoder(), read_timeout_s=5)
    frames = list(islice(source.frames(), 3))
    assert [f.image.shape for f in frames] == [(480, 640, 3)] * 3
