"""A real RTSP camera for tests: Heron's RTSP server fed a moving test pattern from a thread.

    with serve_test_pattern(port) as camera:        # rtsp://127.0.0.1:port/ds-test
        ...                                         # read camera.url with PyAV or ingest
        camera.stall()                              # server up, no frames: readers see no data
        camera.resume()
        camera.restart()                            # down then up on the same port (reconnects)
        camera.stop()                               # viewers see end of stream; start() again

Every frame carries its number in pixels (`frame_number(bgr)` reads it back after decoding), so
tests can check order, gaps and which frames a reader missed. Call `require_gstreamer()` first
(or in a fixture): it skips the test, naming the packages, where GStreamer is not installed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import numpy.typing as npt
from heron.overlay.sinks.gst import GStreamerMissingError, load_gstreamer, require_elements
from heron.overlay.sinks.rtsp import RtspServer
from heron.overlay.sinks.stamp import draw_stamp, read_stamp

from tests.support.redis_server import free_port


def require_gstreamer() -> None:
    """Skip the calling test, naming what to install, when the RTSP server cannot run here."""
    import pytest

    try:
        load_gstreamer()
        require_elements("appsrc", "queue", "x264enc", "rtph264pay")
    except GStreamerMissingError as e:
        pytest.skip(str(e))


def pattern_frame(number: int, width: int, height: int) -> npt.NDArray[np.uint8]:
    """Frame `number`: a colour gradient with a bar moving 4 px a frame, stamped with `number`."""
    x = np.linspace(0, 255, width, dtype=np.float32)
    y = np.linspace(0, 255, height, dtype=np.float32)
    frame = np.empty((height, width, 3), np.uint8)
    frame[..., 0] = x[None, :].astype(np.uint8)  # blue rises to the right
    frame[..., 1] = y[:, None].astype(np.uint8)  # green rises downwards
    frame[..., 2] = 96
    left = (number * 4) % width
    frame[:, left : left + max(4, width // 20)] = 255
    draw_stamp(frame, number)
    return frame


def frame_number(bgr: npt.NDArray[np.uint8]) -> int:
    """The number stamped into a (decoded) pattern frame."""
    return read_stamp(bgr)


class PatternSource:
    """An RTSP server on a fixed port pushing `pattern_frame(n)` at `fps` while not stalled."""

    def __init__(
        self,
        port: int | None = None,
        *,
        width: int = 320,
        height: int = 240,
        fps: float = 30.0,
        mount: str = "/ds-test",
    ) -> None:
        self.server = RtspServer(port or free_port(), mount, width=width, height=height, fps=fps)
        self.width, self.height, self.fps = width, height, fps
        self.frames_sent = 0  # frame numbers continue across stalls and restarts
        self._pushing = threading.Event()
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.settings.port

    def start(self) -> None:
        self.server.start()
        self._halt.clear()
        self._pushing.set()
        self._thread = threading.Thread(target=self._run, name="rtsp-pattern", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop pushing and take the server down (viewers see end of stream; port freed)."""
        self._halt.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.server.stop()

    def restart(self) -> None:
        self.stop()
        self.start()

    def stall(self) -> None:
        """Keep the server and its connections up but push nothing (a frozen camera)."""
        self._pushing.clear()

    def resume(self) -> None:
        self._pushing.set()

    def _run(self) -> None:
        import time

        period = 1.0 / self.fps
        deadline = time.monotonic()
        while not self._halt.is_set():
            if self._pushing.is_set():
                self.server.push(pattern_frame(self.frames_sent, self.width, self.height))
                self.frames_sent += 1
            deadline = max(deadline + period, time.monotonic())
            self._halt.wait(max(0.0, deadline - time.monotonic()))


@contextmanager
def serve_test_pattern(
    port: int | None = None,
    *,
    width: int = 320,
    height: int = 240,
    fps: float = 30.0,
    mount: str = "/ds-test",
) -> Iterator[PatternSource]:
    """A started PatternSource, stopped on exit (a free port when `port` is None)."""
    source = PatternSource(port, width=width, height=height, fps=fps, mount=mount)
    source.start()
    try:
        yield source
    finally:
        source.stop()
