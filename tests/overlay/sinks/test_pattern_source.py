"""tests.support.rtsp_source: the RTSP camera stand-in other services' tests rely on."""

from __future__ import annotations

import numpy as np

from tests.overlay.sinks.rtsp_client import Viewer, wait_until
from tests.support.rtsp_source import frame_number, pattern_frame, serve_test_pattern


def test_the_pattern_arrives_numbered_and_moving(rtsp_port: int) -> None:
    with serve_test_pattern(rtsp_port) as camera:
        assert camera.url == f"rtsp://127.0.0.1:{rtsp_port}/ds-test"
        viewer = Viewer(camera.url).start()
        frames = viewer.wait_frames(8)
        viewer.close()
    got = [frame_number(f) for f in frames]
    assert got == sorted(got) and len(set(got)) == len(got), got
    sent = pattern_frame(got[-1], 320, 240).astype(np.int16)
    assert np.abs(frames[-1].astype(np.int16) - sent).mean() < 8  # the very frame, encoded


def test_a_stalled_camera_sends_nothing_until_resumed(rtsp_port: int) -> None:
    with serve_test_pattern(rtsp_port) as camera:
        viewer = Viewer(camera.url, read_timeout_s=1.0).start()
        viewer.wait_frames(3)
        camera.stall()
        last_sent = camera.frames_sent
        assert viewer.ended.wait(30), "the viewer kept reading from a stalled camera"
        assert viewer.error is not None  # PyAV's read timeout: no data came
        assert max(frame_number(f) for f in viewer.frames) < last_sent
        camera.resume()
        again = Viewer(camera.url).start()
        assert frame_number(again.wait_frames(1)[0]) >= last_sent
        again.close()


def test_a_restarted_camera_serves_again_on_the_same_port(rtsp_port: int) -> None:
    with serve_test_pattern(rtsp_port) as camera:
        before = Viewer(camera.url).start()
        before.wait_frames(3)
        camera.stop()
        assert before.ended.wait(20) and before.error is None  # end of stream, as NOTES.md says
        sent_before = camera.frames_sent
        camera.start()
        after = Viewer(camera.url).start()
        assert frame_number(after.wait_frames(3)[0]) >= sent_before
        after.close()
        wait_until(lambda: camera.server.clients == 0, "the viewer to disconnect")
