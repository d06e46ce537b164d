"""The status board's per-stream rates stay a window long, whether or not anyone asks."""

from __future__ import annotations

import pytest
from heron.control.status_board import BoardSettings, StatusBoard
from heron.core.bus import MemoryTransport
from heron.core.bus.settings import BusSettings
from heron.v1.detection_pb2 import FrameMetadata


def test_frames_older_than_the_window_are_forgotten_as_they_arrive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [0.0]
    monkeypatch.setattr("heron.control.status_board.time.monotonic", lambda: clock[0])
    settings = BoardSettings("tracker", "default", stale_s=5, forget_s=60, rate_window_s=2.0)
    board = StatusBoard(MemoryTransport().bus(BusSettings()), settings)
    message = FrameMetadata()
    for i in range(10_000):  # 100 s of one stream at 100 fps, and no client asking
        clock[0] = i / 100
        message.frame.stream_id = "cam"
        board._frame(message)
    assert len(board._frames) <= 201  # the 2 s window, not the 10,000 frames
    (rate,) = board.rates(now=clock[0])
    assert rate.stream_id == "cam" and rate.fps == pytest.approx(100, rel=0.01)
