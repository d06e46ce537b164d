"""RecentFrames: a frame delivered again (an upstream restart redid it) is drawn once."""

from __future__ import annotations

import pytest
from heron.overlay.dedup import RecentFrames
from heron.v1.detection_pb2 import FrameMetadata


def meta(stream: str, number: int, seconds: int = 100) -> FrameMetadata:
    m = FrameMetadata()
    m.frame.stream_id = stream
    m.frame.frame_number = number
    m.frame.capture_time.seconds = seconds
    return m


def test_a_repeat_is_refused_and_other_frames_are_not() -> None:
    recent = RecentFrames()
    assert recent.first_time(meta("a", 1))
    assert not recent.first_time(meta("a", 1))  # republished after an inference restart
    assert recent.first_time(meta("b", 1))  # another stream, same number
    assert recent.first_time(meta("a", 2))
    assert recent.first_time(meta("a", 1, seconds=200))  # a restarted ingest numbering again


def test_memory_is_bounded_oldest_forgotten_first() -> None:
    recent = RecentFrames(capacity=2)
    for n in range(3):
        assert recent.first_time(meta("a", n))
    assert recent.first_time(meta("a", 0))  # forgotten: only the last two are kept
    assert not recent.first_time(meta("a", 2))


@pytest.mark.parametrize("capacity", [0, -1])
def test_capacity_must_be_positive(capacity: int) -> None:
    with pytest.raises(ValueError, match=f"capacity must be >= 1, got {capacity}"):
        RecentFrames(capacity)


def test_a_frame_forgotten_is_offered_again() -> None:
    """A frame that could not be drawn is forgotten: its copy, published again by a restarted
    ingest with the same number and capture time, is drawn."""
    recent = RecentFrames()
    assert recent.first_time(meta("cam", 3))
    recent.forget(meta("cam", 3))
    assert recent.first_time(meta("cam", 3))
    assert not recent.first_time(meta("cam", 3))
    recent.forget(meta("cam", 4))  # never seen: nothing to forget
