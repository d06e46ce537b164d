"""The batching rules of streammux, driven with a fake clock (no Redis, no threads)."""

from __future__ import annotations

import threading

import pytest
from heron.streammux.batcher import Batcher, Trigger


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def batcher(
    batch_size: int | None, timeout_us: int = -1, pending: int = 100
) -> tuple[Batcher[int], Clock]:
    clock = Clock()
    return Batcher(batch_size, timeout_us, max_pending_per_source=pending, clock=clock), clock


def test_a_full_batch_goes_out_at_once_round_robin_over_sources() -> None:
    b, _ = batcher(4)
    for s in ("a", "b"):
        b.add_source(s)
    b.add("a", [1, 2, 3])
    b.add("b", [10, 20])
    taken = b.take(0)
    assert taken is not None
    assert taken.trigger is Trigger.FULL
    assert taken.items == [("a", 1), ("b", 10), ("a", 2), ("b", 20)]
    assert b.take(0) is None  # one frame left: not due without a timeout
    assert b.pending() == 1


def test_round_robin_starts_one_source_later_each_batch() -> None:
    b, _ = batcher(2)
    for s in ("a", "b", "c"):
        b.add_source(s)
    for s in ("a", "b", "c"):
        b.add(s, [1, 2])
    firsts = [b.take(0).items[0][0] for _ in range(3)]  # type: ignore[union-attr]
    assert firsts == ["a", "c", "b"]


@pytest.mark.parametrize(
    ("timeout_us", "waited_s", "due"),
    [(40_000, 0.039, False), (40_000, 0.04, True), (-1, 1e6, False)],
)
def test_a_partial_batch_goes_out_when_the_push_timeout_runs_out(
    timeout_us: int, waited_s: float, due: bool
) -> None:
    b, clock = batcher(4, timeout_us)
    b.add_source("a")
    b.add("a", [1])
    clock.now += waited_s
    taken = b.take(0)
    if not due:
        assert taken is None
        return
    assert taken is not None
    assert (taken.items, taken.trigger, taken.batch_size) == ([("a", 1)], Trigger.TIMEOUT, 4)
    assert taken.waited_s == pytest.approx(waited_s)  # heron_streammux_batch_wait_seconds


def test_the_timer_starts_with_the_first_frame_of_each_batch() -> None:
    b, clock = batcher(2, 10_000)
    b.add_source("a")
    clock.now += 5.0  # idle time before any frame does not count
    b.add("a", [1])
    assert b.take(0) is None
    clock.now += 0.01
    b.add("a", [2, 3])  # fills the batch
    full = b.take(0)
    assert full is not None and full.trigger is Trigger.FULL
    assert full.waited_s == pytest.approx(0.01)  # since frame 1, not since the idle start
    # Frame 3 was left over: its batch's timer starts when the previous batch went out.
    clock.now += 0.009
    assert b.take(0) is None
    clock.now += 0.001
    assert b.take(0).items == [("a", 3)]  # type: ignore[union-attr]


def test_batch_size_unset_means_one_slot_per_live_source() -> None:
    b, _ = batcher(None)
    b.add_source("a")
    assert b.batch_size() == 1
    b.add_source("b")
    b.add("a", [1])
    assert b.take(0) is None
    b.add("b", [1])
    assert len(b.take(0).items) == 2  # type: ignore[union-attr]
    b.end_source("b")
    assert b.batch_size() == 1
    assert b.sources == ["a"]


def test_an_ended_source_pushes_what_it_left_and_goes() -> None:
    b, _ = batcher(4)
    for s in ("a", "b"):
        b.add_source(s)
    b.add("a", [1])
    b.end_source("a")
    taken = b.take(0)
    assert taken is not None
    assert (taken.items, taken.trigger) == ([("a", 1)], Trigger.EOS)
    assert b.sources == ["b"]
    assert b.take(0) is None


def test_drain_returns_everything_left() -> None:
    b, _ = batcher(2)
    for s in ("a", "b"):
        b.add_source(s)
    b.add("a", [1, 2, 3])
    b.add("b", [4])
    taken = b.drain()
    assert taken is not None
    assert taken.trigger is Trigger.DRAIN
    assert sorted(taken.items) == [("a", 1), ("a", 2), ("a", 3), ("b", 4)]
    assert b.drain() is None


def test_a_full_source_makes_its_reader_wait_until_a_batch_leaves() -> None:
    b, _ = batcher(2, pending=2)
    b.add_source("a")
    b.add("a", [1, 2])
    assert b.room("a") == 0
    assert not b.wait_for_room("a", 0.01)
    released = threading.Event()

    def reader() -> None:
        if b.wait_for_room("a", 5):
            released.set()

    t = threading.Thread(target=reader)
    t.start()
    b.take(0)
    t.join(5)
    assert released.is_set()
    assert b.room("a") == 2


def test_frames_of_an_unknown_source_are_refused() -> None:
    b, _ = batcher(2)
    with pytest.raises(KeyError, match="stream 'x' was not added"):
        b.add("x", [1])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size >= 1 or None"),
        ({"pending": 0}, "max_pending_per_source >= 1"),
    ],
)
def test_bad_batcher_settings_are_refused(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Batcher(kwargs.get("batch_size", 2), -1, max_pending_per_source=kwargs.get("pending", 1))
