"""A PyAV RTSP viewer for the tests: decodes frames in a thread of its own."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

# NOTES.md: these make PyAV open an RTSP stream in ~0.1 s; the timeout ends a stalled read.
OPTIONS = {
    "rtsp_transport": "tcp",
    "fflags": "nobuffer",
    "flags": "low_delay",
    "analyzeduration": "0",
    "probesize": "32",
}
WAIT_S = 20.0  # generous: a condition, never a timing, is what tests assert


def open_rtsp(url: str, read_timeout_s: float = 10.0) -> Any:
    import av

    return av.open(url, options=OPTIONS, timeout=(10.0, read_timeout_s))


@dataclass
class Viewer:
    """Decodes `url` until closed or the stream ends; keeps every frame (BGR) and why it ended."""

    url: str
    read_timeout_s: float = 10.0
    frames: list[npt.NDArray[np.uint8]] = field(default_factory=list)
    key_frames: list[bool] = field(default_factory=list)
    codec: str = ""
    ended: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    _closing: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Viewer:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            container = open_rtsp(self.url, self.read_timeout_s)
            try:
                self.codec = container.streams.video[0].codec_context.name
                for frame in container.decode(video=0):
                    self.frames.append(frame.to_ndarray(format="bgr24"))
                    self.key_frames.append(bool(frame.key_frame))
                    if self._closing.is_set():
                        break
            finally:
                container.close()
        except BaseException as e:  # handed to the test, which decides whether it is expected
            self.error = e
        finally:
            self.ended.set()

    def wait_frames(self, count: int) -> list[npt.NDArray[np.uint8]]:
        """The first `count` frames; fails the test if the stream ends or stalls first."""
        deadline = time.monotonic() + WAIT_S
        while len(self.frames) < count:
            if self.ended.is_set() or time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.url}: got {len(self.frames)} of {count} frames "
                    f"(ended={self.ended.is_set()}, error={self.error!r})"
                )
            time.sleep(0.01)
        return self.frames[:count]

    def close(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self._thread.join(WAIT_S)


def wait_until(condition: Any, what: str) -> None:
    """Poll `condition()` until true; fail naming `what` if it never becomes so."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)
