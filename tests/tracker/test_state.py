"""Per-stream tracker state: isolation between streams, cleanup at EOS, id reset modes."""

from __future__ import annotations

import pytest
from heron.tracker import TrackerKind
from heron.tracker.factory import TrackerSpec
from heron.tracker.state import Streams

from tests.tracker.scenes import box, dets, ids, params


def streams(reset_mode: int = 0) -> Streams:
    return Streams(TrackerSpec(TrackerKind.IOU, params()), reset_mode)


def track(s: Streams, stream_id: str, *boxes: list[float]) -> list[int]:
    return ids(s.get(stream_id).tracker.update(dets(*boxes), None))


def test_streams_do_not_share_targets_or_ids() -> None:
    s = streams()
    assert track(s, "cam-a", box(10, 10), box(100, 100)) == [1, 2]
    # The same boxes on another stream are other objects, numbered from 1 there.
    assert track(s, "cam-b", box(10, 10)) == [1]
    assert track(s, "cam-a", box(11, 10), box(100, 101)) == [1, 2]
    out = s.get("cam-b").tracker.update(dets(box(200, 10), box(11, 10)), None)
    assert {o.detection: o.track_id for o in out} == {0: 2, 1: 1}
    assert len(s) == 2


def test_eos_drops_the_stream_after_its_last_frame() -> None:
    s = streams()
    track(s, "cam-a", box(10, 10))
    track(s, "cam-b", box(10, 10))
    s.ended("cam-a", frames=3)  # frames 0..2; frame 1 is still to come
    s.after_frame("cam-a", 1)
    assert "cam-a" in s
    s.after_frame("cam-a", 2)
    assert "cam-a" not in s and "cam-b" in s


def test_eos_for_a_stream_already_done_drops_it_at_once() -> None:
    s = streams()
    track(s, "cam-a", box(10, 10))
    s.after_frame("cam-a", 9)
    s.ended("cam-a", frames=10)
    s.after_frame("cam-a", 9)
    assert "cam-a" not in s


def test_streams_whose_last_frames_never_come_expire() -> None:
    s = streams()
    track(s, "cam-a", box(10, 10))
    s.ended("cam-a", frames=100)
    assert s.expire(grace_s=60) == []
    assert s.expire(grace_s=0.0) == ["cam-a"] and len(s) == 0


@pytest.mark.parametrize(
    ("mode", "after_restart", "after_eos"),
    [(0, 3, 3), (1, 1, 3), (2, 3, 1), (3, 1, 1)],
)
def test_tracking_id_reset_mode(mode: int, after_restart: int, after_eos: int) -> None:
    s = streams(mode)
    assert track(s, "cam", box(10, 10), box(100, 100)) == [1, 2]
    s.started("cam")  # the source restarted: its old targets are gone either way
    assert track(s, "cam", box(10, 10)) == [after_restart]
    s = streams(mode)
    track(s, "cam", box(10, 10), box(100, 100))
    s.ended("cam", frames=1)
    s.after_frame("cam", 0)
    assert track(s, "cam", box(10, 10)) == [after_eos]
