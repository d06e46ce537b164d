"""RtspServer against a real PyAV viewer on loopback: frames, viewers, colours, stop, errors."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import numpy.typing as npt
import pytest
from heron.overlay.sinks import (
    FrameFormatError,
    PortInUseError,
    RtspCodec,
    RtspMetrics,
    RtspServer,
    RtspSettings,
)
from heron.overlay.sinks.gst import has_element
from heron.overlay.sinks.stamp import draw_stamp, read_stamp
from prometheus_client import CollectorRegistry

from tests.overlay.sinks.rtsp_client import Viewer, open_rtsp, wait_until

W, H, FPS = 320, 240, 30.0
Frame = npt.NDArray[np.uint8]


def stamped(number: int) -> Frame:
    frame = np.full((H, W, 3), 60, np.uint8)
    draw_stamp(frame, number)
    return frame


@contextmanager
def feeding(server: RtspServer, make: Callable[[int], Frame] = stamped) -> Iterator[None]:
    """Push `make(n)` at FPS from a thread, as a camera or the overlay would."""
    halt = threading.Event()

    def run() -> None:
        number = 0
        while not halt.wait(1.0 / FPS):
            server.push(make(number))
            number += 1

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        halt.set()
        thread.join()


def numbers(frames: list[Frame]) -> list[int]:
    return [read_stamp(f) for f in frames]


@pytest.mark.parametrize("codec", [RtspCodec.H264, RtspCodec.H265])
def test_viewer_decodes_the_pushed_frames_in_order(rtsp_port: int, codec: RtspCodec) -> None:
    if not has_element("x265enc") and codec is RtspCodec.H265:
        pytest.skip("x265enc is not installed (Debian gstreamer1.0-plugins-bad)")
    with RtspServer(rtsp_port, width=W, height=H, fps=FPS, codec=codec) as server, feeding(server):
        viewer = Viewer(server.url).start()
        frames = viewer.wait_frames(10)
        viewer.close()
    assert viewer.codec == {"h264": "h264", "h265": "hevc"}[codec.value]
    assert all(f.shape == (H, W, 3) for f in frames)
    got = numbers(frames)
    assert got == sorted(got) and len(set(got)) == len(got), got
    assert viewer.key_frames[0]


@pytest.mark.parametrize(
    "bgr", [(255, 0, 0), (0, 255, 0), (0, 0, 255), (0, 200, 255), (255, 255, 255)]
)
def test_a_coloured_square_arrives_in_its_colour(rtsp_port: int, bgr: tuple[int, int, int]) -> None:
    def square(number: int) -> Frame:
        frame = stamped(number)
        frame[80:200, 120:280] = bgr
        return frame

    with RtspServer(rtsp_port, width=W, height=H) as server, feeding(server, square):
        viewer = Viewer(server.url).start()
        frame = viewer.wait_frames(3)[-1]
        viewer.close()
    inside = frame[100:180, 140:260].reshape(-1, 3).mean(axis=0)
    outside = frame[210:, :].reshape(-1, 3).mean(axis=0)
    np.testing.assert_allclose(inside, bgr, atol=12)
    np.testing.assert_allclose(outside, (60, 60, 60), atol=12)


def test_two_viewers_share_one_encoder_and_a_late_one_gets_a_keyframe(rtsp_port: int) -> None:
    # One keyframe per 1000 frames: without the keyframe forced on PLAY the late viewer would
    # wait ~33 s for its first picture, so its first frame being a keyframe early on shows it.
    settings = RtspSettings(port=rtsp_port, width=W, height=H, fps=FPS, key_int_max=1000)
    metrics = RtspMetrics(CollectorRegistry())
    with RtspServer.from_settings(settings, metrics) as server, feeding(server):
        first = Viewer(server.url).start()
        first.wait_frames(15)
        second = Viewer(server.url).start()
        late = second.wait_frames(5)
        wait_until(lambda: server.clients == 2, "two RTSP clients")
        assert (
            metrics.registry.get_sample_value(
                "heron_rtsp_clients", {"port": str(rtsp_port), "mount": "/ds-test"}
            )
            == 2
        )
        joined_at = read_stamp(late[0])
        first.wait_frames(len(first.frames) + 5)
        second.close()
        first.close()
        wait_until(lambda: server.clients == 0, "both RTSP clients gone")
    assert second.key_frames[0]
    assert joined_at - read_stamp(first.frames[0]) < 500  # far less than one GOP of 1000
    # Both decode the same stream: the late viewer's frames are also in the first viewer's.
    assert set(numbers(late)) <= set(numbers(first.frames))


def test_stopping_the_server_ends_the_viewers_stream(rtsp_port: int) -> None:
    server = RtspServer(rtsp_port, width=W, height=H)
    server.start()
    with feeding(server):
        viewer = Viewer(server.url).start()
        viewer.wait_frames(5)
        server.stop()
        assert viewer.ended.wait(20), "the viewer still reads after the server stopped"
    assert viewer.error is None  # a clean end of stream, as from a camera that went away
    assert server.clients == 0
    server.start()  # the port is free again: the same server comes back
    server.stop()


def test_a_viewer_that_stops_reading_never_blocks_push(rtsp_port: int) -> None:
    metrics = RtspMetrics(CollectorRegistry())
    settings = RtspSettings(port=rtsp_port, width=W, height=H)
    with RtspServer.from_settings(settings, metrics) as server, feeding(server):
        stuck = open_rtsp(server.url)  # connected and PLAYing, but never reads a packet
        try:
            wait_until(lambda: server.frames_encoded > 0, "the encoder to start")
            accepted = [server.push(stamped(n)) for n in range(600)]  # flat out
        finally:
            stuck.close()
    assert all(accepted)
    labels = {"port": str(rtsp_port), "mount": "/ds-test"}
    sample = metrics.registry.get_sample_value
    pushed = sample("heron_rtsp_frames_pushed_total", labels) or 0
    encoded = sample("heron_rtsp_frames_encoded_total", labels) or 0
    behind = sample("heron_rtsp_frames_dropped_total", {**labels, "reason": "encoder_behind"})
    assert pushed >= 600 and 0 < encoded < pushed
    assert behind and behind > 0  # the leaky queue dropped frames rather than wait


def test_frames_without_a_viewer_are_counted_as_dropped(rtsp_port: int) -> None:
    metrics = RtspMetrics(CollectorRegistry())
    settings = RtspSettings(port=rtsp_port, width=W, height=H)
    with RtspServer.from_settings(settings, metrics) as server:
        assert [server.push(stamped(n)) for n in range(3)] == [False] * 3
    labels = {"port": str(rtsp_port), "mount": "/ds-test"}
    sample = metrics.registry.get_sample_value
    assert sample("heron_rtsp_frames_dropped_total", {**labels, "reason": "no_viewer"}) == 3
    assert sample("heron_rtsp_frames_pushed_total", labels) == 0
    assert (server.frames_pushed, server.frames_dropped) == (0, 3)


def test_a_second_server_on_the_port_gets_a_clear_error(rtsp_port: int) -> None:
    with RtspServer(rtsp_port, width=W, height=H):
        other = RtspServer(rtsp_port, width=W, height=H)
        with pytest.raises(PortInUseError, match=rf"127\.0\.0\.1:{rtsp_port} is already in use"):
            other.start()
        assert not other.running


def test_a_port_held_by_another_program_gets_a_clear_error(rtsp_port: int) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", rtsp_port))
        holder.listen()
        with pytest.raises(PortInUseError, match=str(rtsp_port)):
            RtspServer(rtsp_port, width=W, height=H).start()


@pytest.mark.parametrize(
    ("frame", "got"),
    [
        (np.zeros((H, W, 3), np.float32), f"({H}, {W}, 3) float32"),
        (np.zeros((H, W), np.uint8), f"({H}, {W}) uint8"),
        (np.zeros((W, H, 3), np.uint8), f"({W}, {H}, 3) uint8"),
        (np.zeros((H, W, 4), np.uint8), f"({H}, {W}, 4) uint8"),
        ([[0, 0, 0]], "list"),
    ],
)
def test_a_bad_frame_gets_a_clear_error(rtsp_port: int, frame: object, got: str) -> None:
    server = RtspServer(rtsp_port, width=W, height=H)
    with server, pytest.raises(FrameFormatError) as raised:
        server.push(frame)  # type: ignore[arg-type]
    assert f"expected a ({H}, {W}, 3) uint8 BGR numpy array, got {got}" == str(raised.value)


def test_push_before_start_is_refused(rtsp_port: int) -> None:
    with pytest.raises(RuntimeError, match="before start"):
        RtspServer(rtsp_port, width=W, height=H).push(stamped(0))


def test_starting_twice_is_refused(rtsp_port: int) -> None:
    with RtspServer(rtsp_port, width=W, height=H) as server, pytest.raises(RuntimeError):
        server.start()
