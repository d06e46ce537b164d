"""The shared reader of Detections.Subscribe (heron.control.fanout) on a real Redis: live
subscriptions take from its ring, a subscription behind it reads the stream itself until it
reaches the ring and then shares it, the ring moving past a stalled one costs it nothing (or a
Gap past max_behind), and the reader stops with the service or when idle.

Some tests drive the servicer without gRPC, pulling each subscription's events in the test's
own thread, so that what read the stream itself (and for whom) can be counted exactly."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from heron.control.detections import DetectionsServicer
from heron.control.fanout import ReaderOptions, Ring, SharedTail, SharedTails
from heron.control.metrics import SubscribeMetrics
from heron.control.positions import position_text
from heron.core import streams
from heron.core.bus import Cursor, RedisBus, Tail, TailEntry, TailRead, Window
from heron.core.grpc import UnavailableError
from heron.core.plan.settings.control import SubscribeSettings
from heron.v1.control_pb2 import DetectionEvent, SubscribeRequest
from heron.v1.detection_pb2 import FrameMetadata
from prometheus_client import CollectorRegistry

from tests.control.control_harness import (
    STAGE,
    Control,
    Metadata,
    control,
    frame,
    frame_numbers,
    new_pipeline,
    subscription,
    take,
)

# --- the ring on its own -------------------------------------------------------------------


def cursors(first: int, last: int) -> list[Cursor]:
    return [Cursor(f"{n}-0", n) for n in range(first, last + 1)]


def test_the_ring_keeps_the_newest_entries_in_order() -> None:
    ring: Ring[int] = Ring(4, Cursor("2-0", 2))
    assert ring.holds(Cursor("2-0", 2)) and ring.after(Cursor("2-0", 2), 10) == []
    for c in cursors(3, 8):
        ring.append(c, c.number)
    assert ring.base == Cursor("4-0", 4) and ring.head == Cursor("8-0", 8) and ring.size == 4
    assert ring.after(Cursor("4-0", 4), 10) == [5, 6, 7, 8]
    assert ring.after(Cursor("6-0", 6), 1) == [7]
    assert ring.after(Cursor("8-0", 8), 10) == []
    assert not ring.holds(Cursor("3-0", 3))  # moved past it
    assert not ring.holds(Cursor("9-0", 9))  # not read yet
    assert not ring.holds(Cursor("6-1", 6))  # the same number, another id: not this history
    ring.reset(Cursor("20-0", 15))
    assert ring.holds(Cursor("20-0", 15)) and not ring.holds(Cursor("8-0", 8))
    assert ring.size == 0


# --- the servicer without gRPC -------------------------------------------------------------


class Context:
    """What Subscribe asks of a grpc.ServicerContext."""

    def is_active(self) -> bool:
        return True

    def time_remaining(self) -> float | None:
        return None

    def add_callback(self, callback: Callable[[], None]) -> bool:
        return True

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise AssertionError(f"aborted: {code} {details}")


@dataclass
class CountingTail:
    """A Tail that counts the entries read from the stream itself, by whom."""

    tail: Tail[FrameMetadata]
    who: str = "?"
    entries: dict[str, int] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.tail.key

    def window(self) -> Window:
        return self.tail.window()

    def read(self, after: Cursor, count: int, block_ms: int = 0) -> TailRead[FrameMetadata]:
        read = self.tail.read(after, count, block_ms)
        thread = threading.current_thread().name
        who = "reader" if thread.startswith("heron-fanout") else self.who
        self.entries[who] = self.entries.get(who, 0) + len(read.entries)
        return read


class Subscriptions:
    """A DetectionsServicer on a real Redis stream, its subscriptions pulled by the test. The
    shared reader is started first, at the stream's first entry (of stream "start"), and
    kept running."""

    def __init__(self, redis_url: str, **settings: Any) -> None:
        self.metadata = Metadata(redis_url, new_pipeline())
        self.tail = CountingTail(self.metadata.bus.tail(self.metadata.stream, FrameMetadata))
        self.stopping = threading.Event()
        self.registry = CollectorRegistry()
        self.servicer = DetectionsServicer(
            self.tail,
            SubscribeSettings.model_validate({"block_ms": 50, "read_count": 8, **settings}),
            SubscribeMetrics(self.registry),
            self.stopping,
        )
        assert self.servicer.shared is not None
        self.shared = self.servicer.shared
        self.metadata.publish(range(1), "start")
        self.shared.attach()
        self.ring_at_newest()

    def subscribe(self, **request: Any) -> Iterator[DetectionEvent]:
        """A subscription; with no position, from the stream's newest entry now (what "from
        now" means, fixed here rather than at the first event pulled)."""
        if "after" not in request and "from_oldest" not in request:
            request["after"] = position_text(self.tail.window().newest)
        return self.servicer.Subscribe(SubscribeRequest(**request), Context())

    def publish(self, numbers: range, stream_id: str = "cam-0") -> None:
        """Publish, and wait until the shared reader has them."""
        self.metadata.publish(numbers, stream_id)
        self.ring_at_newest()

    def pull(self, who: str, events: Iterator[DetectionEvent], count: int) -> list[DetectionEvent]:
        """The next `count` events; what reads the stream meanwhile reads it for `who`."""
        self.tail.who = who
        return take(events, count)

    def direct(self, who: str) -> int:
        """Entries `who` read from the stream itself."""
        return self.tail.entries.get(who, 0)

    def ring_at_newest(self, timeout_s: float = 5.0) -> None:
        newest = self.tail.window().newest
        deadline = time.monotonic() + timeout_s
        while self.shared.read(newest, 1, 0.01) is None:
            assert time.monotonic() < deadline, "the shared reader did not catch up"

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def close(self) -> None:
        self.stopping.set()
        self.shared.detach()
        thread = self.shared.thread
        if thread is not None:
            thread.join(5)
        self.metadata.close()


@contextmanager
def subscriptions(redis_url: str, **settings: Any) -> Iterator[Subscriptions]:
    running = Subscriptions(redis_url, **settings)
    try:
        yield running
    finally:
        running.close()


def test_a_resumed_subscriber_reads_the_stream_until_it_reaches_the_ring(
    redis_url: str,
) -> None:
    with subscriptions(redis_url, fanout_entries=128) as subs:
        subs.publish(range(100))
        old = subs.pull("setup", subs.subscribe(from_oldest=True), 11)[-1].position  # frame 9
        live = subs.subscribe()
        subs.publish(range(100, 200))  # the ring holds frames 72..199 now
        got_live = subs.pull("live", live, 100)
        assert subs.direct("live") == 0  # all of it from the ring
        # Behind the ring: it reads the stream itself until its position is in the ring (frames
        # 10..71, and the rest of that read), then takes from the ring.
        resumed = subs.subscribe(after=old)
        got_resumed = subs.pull("resumed", resumed, 190)
        assert 62 <= subs.direct("resumed") < 62 + 8
        read_itself = subs.direct("resumed")
        subs.publish(range(200, 300))
        got_live += subs.pull("live", live, 100)
        got_resumed += subs.pull("resumed", resumed, 100)
        assert subs.direct("live") == 0 and subs.direct("resumed") == read_itself
        assert frame_numbers(got_live) == list(range(100, 300))
        assert frame_numbers(got_resumed) == list(range(10, 300))  # every frame once, in order
        # A frame has the same position whoever got it, and from wherever.
        assert [e.position for e in got_resumed[90:]] == [e.position for e in got_live]
        assert subs.direct("reader") == 300 and subs.shared.starts == 1


def test_the_ring_moving_past_a_stalled_subscriber_costs_it_nothing(redis_url: str) -> None:
    with subscriptions(redis_url, fanout_entries=16) as subs:
        live, stalled = subs.subscribe(), subs.subscribe()
        subs.publish(range(4))
        got, got_live = subs.pull("stalled", stalled, 4), subs.pull("live", live, 4)
        for first in range(4, 104, 10):  # the live one keeps up, the stalled one takes nothing
            subs.publish(range(first, first + 10))
            got_live += subs.pull("live", live, 10)
        assert subs.direct("stalled") == 0 and subs.direct("live") == 0
        # The ring holds frames 88..103: the stalled one reads 4..87 itself, then takes from it.
        got += subs.pull("stalled", stalled, 100)
        assert 84 <= subs.direct("stalled") < 84 + 8
        read_itself = subs.direct("stalled")
        for first in range(104, 149, 9):
            subs.publish(range(first, first + 9))
            got += subs.pull("stalled", stalled, 9)
            got_live += subs.pull("live", live, 9)
        assert frame_numbers(got) == frame_numbers(got_live) == list(range(149))
        assert subs.direct("stalled") == read_itself and subs.direct("live") == 0
        assert [e.position for e in got] == [e.position for e in got_live]
        assert subs.metric("heron_control_missed_frames_total", reason="behind") == 0


def test_past_max_behind_a_subscriber_on_the_ring_skips_with_an_exact_gap(
    redis_url: str,
) -> None:
    with subscriptions(redis_url, fanout_entries=64, max_behind=30) as subs:
        stalled = subs.subscribe()
        subs.publish(range(1))
        (first,) = subs.pull("stalled", stalled, 1)
        subs.publish(range(1, 53))  # 52 behind, all of them still in the ring
        later = threading.Timer(0.5, lambda: subs.publish(range(53, 55)))
        later.start()
        gap, *frames = subs.pull("stalled", stalled, 3)  # skips to frame 52, waits for 53
        later.join()
        assert gap.WhichOneof("event") == "gap"
        assert gap.gap.after == first.position and gap.gap.missed == 52
        assert frame_numbers(frames) == [53, 54] and gap.gap.resumed_at == frames[0].position
        assert subs.metric("heron_control_missed_frames_total", reason="behind") == 52
        assert subs.direct("stalled") == 0


def test_filtered_and_unfiltered_subscribers_share_the_reader(redis_url: str) -> None:
    with subscriptions(redis_url) as subs:
        everything = subs.subscribe()
        masks = subs.subscribe(stream_ids=["cam-1"], classes=["Mask"])
        cam0 = subs.subscribe(stream_ids=["cam-0"])
        objects = [("Mask", 0.9), ("No_Mask", 0.8)]
        subs.metadata.publisher.publish_many(
            [frame("cam-0", 1, objects), frame("cam-1", 1, objects), frame("cam-0", 2)]
        )
        subs.ring_at_newest()
        all_events = subs.pull("all", everything, 3)
        cam1 = subs.pull("masks", masks, 1)
        only_cam0 = subs.pull("cam0", cam0, 2)
        assert [len(e.frame.objects) for e in all_events] == [2, 2, 0]
        assert [o.label for o in cam1[0].frame.objects] == ["Mask"]
        assert cam1[0].position == all_events[1].position
        assert [e.position for e in only_cam0] == [all_events[0].position, all_events[2].position]
        assert subs.direct("all") == subs.direct("masks") == subs.direct("cam0") == 0


def test_the_reader_stops_when_the_service_stops(redis_url: str) -> None:
    with subscriptions(redis_url) as subs:
        events = subs.subscribe()
        subs.publish(range(1))
        subs.pull("live", events, 1)
        thread = subs.shared.thread
        assert thread is not None and thread.is_alive()
        assert thread.name == f"heron-fanout {subs.metadata.stream.key}"
        subs.stopping.set()
        with pytest.raises(UnavailableError):
            next(events)
        thread.join(2)
        assert not thread.is_alive() and not subs.shared.running


def test_an_idle_reader_stops_and_the_next_subscription_starts_it(redis_url: str) -> None:
    metadata = Metadata(redis_url, new_pipeline())
    tail = metadata.bus.tail(metadata.stream, FrameMetadata)
    options = ReaderOptions(capacity=8, read_count=8, block_ms=20, idle_s=0.1)
    shared: SharedTail[FrameMetadata, TailEntry[FrameMetadata]] = SharedTail(
        tail, same, options, threading.Event()
    )
    try:
        shared.attach()
        first = shared.thread
        shared.detach()
        assert first is not None
        first.join(2)
        assert not first.is_alive() and not shared.running
        shared.attach()
        assert shared.running and shared.thread is not first and shared.starts == 2
        shared.detach()
    finally:
        metadata.close()


def same(entry: TailEntry[FrameMetadata]) -> TailEntry[FrameMetadata]:
    return entry


def test_each_stream_key_has_its_own_reader(redis_url: str) -> None:
    bus = RedisBus.from_url(redis_url, registry=CollectorRegistry())
    names = [streams.metadata(STAGE, new_pipeline()) for _ in range(2)]
    tails = [bus.tail(name, FrameMetadata) for name in names]
    stopping = threading.Event()
    shared: SharedTails[FrameMetadata, TailEntry[FrameMetadata]] = SharedTails(
        same, ReaderOptions(capacity=64, read_count=8, block_ms=20), stopping
    )
    try:
        publishers = [bus.publisher(name, FrameMetadata) for name in names]
        for publisher in publishers:
            publisher.publish(frame("start", 0))
        one, two = shared.of(tails[0]), shared.of(tails[1])
        assert shared.of(tails[0]) is one and one is not two
        assert {s.key for s in shared.all()} == {name.key for name in names}
        one.attach()
        two.attach()
        starts = [newest_in_ring(s, t) for s, t in zip((one, two), tails, strict=True)]
        publishers[0].publish_many([frame("cam-0", n) for n in range(3)])
        publishers[1].publish_many([frame("cam-9", n) for n in range(5)])
        got = [read_all(one, starts[0], 3), read_all(two, starts[1], 5)]
        assert [[e.message.frame.stream_id for e in g if e.message] for g in got] == [
            ["cam-0"] * 3,
            ["cam-9"] * 5,
        ]
        threads = {s.thread.name for s in (one, two) if s.thread is not None}
        assert threads == {f"heron-fanout {name.key}" for name in names}
    finally:
        stopping.set()
        for s in shared.all():
            if s.thread is not None:
                s.thread.join(2)
        bus.close()


def newest_in_ring(shared: SharedTail[FrameMetadata, Any], tail: Tail[FrameMetadata]) -> Cursor:
    """The stream's newest cursor, once the reader has it."""
    newest = tail.window().newest
    deadline = time.monotonic() + 5
    while shared.read(newest, 1, 0.01) is None:
        assert time.monotonic() < deadline, "the reader did not start"
    return newest


def read_all(
    shared: SharedTail[FrameMetadata, TailEntry[FrameMetadata]], after: Cursor, count: int
) -> list[TailEntry[FrameMetadata]]:
    got: list[TailEntry[FrameMetadata]] = []
    deadline = time.monotonic() + 5
    while len(got) < count and time.monotonic() < deadline:
        read = shared.read(got[-1].cursor if got else after, count, 0.05)
        assert read is not None
        got += read[0]
    return got


class ScriptedTail:
    """A Tail whose reads are given by the test: here, a stream made again under the reader."""

    key = "heron:test:scripted"

    def __init__(self) -> None:
        self.reads: list[TailRead[FrameMetadata]] = []
        self.lock = threading.Lock()

    def window(self) -> Window:
        return Window(2, 2, "1-0", "2-0")

    def read(self, after: Cursor, count: int, block_ms: int = 0) -> TailRead[FrameMetadata]:
        with self.lock:
            if self.reads:
                return self.reads.pop(0)
        time.sleep(block_ms / 1000)
        return TailRead(after, [], 0, after)


def entry(entry_id: str, number: int) -> TailEntry[FrameMetadata]:
    return TailEntry(Cursor(entry_id, number), frame("cam-0", number), None)


def test_a_reader_moved_by_the_stream_starts_its_ring_afresh() -> None:
    tail = ScriptedTail()
    stopping = threading.Event()
    options = ReaderOptions(capacity=8, read_count=8, block_ms=10)
    shared: SharedTail[FrameMetadata, TailEntry[FrameMetadata]] = SharedTail(
        tail, same, options, stopping
    )
    old = Cursor("2-0", 2)
    try:
        shared.attach()
        deadline = time.monotonic() + 5
        while shared.read(old, 8, 0.01) is None:  # started, at the newest: `old`
            assert time.monotonic() < deadline
        with tail.lock:
            tail.reads.append(TailRead(old, [entry("3-0", 3)], 0, Cursor("3-0", 3)))
        got = shared.read(old, 8, 1.0)
        assert got is not None and [e.cursor for e in got[0]] == [Cursor("3-0", 3)]
        # The stream was made again: the reader's next read goes on from elsewhere.
        moved = Cursor("3-0", 1)
        with tail.lock:
            tail.reads.append(TailRead(moved, [entry("4-0", 2)], 0, Cursor("4-0", 2)))
        deadline = time.monotonic() + 5
        while shared.read(moved, 8, 0.05) is None:
            assert time.monotonic() < deadline
        # A subscriber at the old history's cursors reads the stream itself (and learns there
        # what it lost); the ring never mixes the two histories.
        assert shared.read(Cursor("3-0", 3), 8, 0.05) is None
        assert shared.read(old, 8, 0.05) is None
    finally:
        stopping.set()
        shared.detach()


# --- over gRPC -------------------------------------------------------------------------------


def test_a_resumed_and_a_live_subscriber_see_every_frame_once(redis_url: str) -> None:
    pipeline = new_pipeline()
    metadata = Metadata(redis_url, pipeline)
    try:
        with control(redis_url, pipeline, subscribe={"fanout_entries": 32}) as server:
            metadata.publish(range(100))
            with subscription(server.port, SubscribeRequest(from_oldest=True)) as events:
                first = take(events, 100)
            old, newest = first[4].position, first[-1].position
            with (
                subscription(server.port, SubscribeRequest(after=newest)) as live,
                subscription(server.port, SubscribeRequest(after=old)) as resumed,
            ):
                metadata.publish(range(100, 150))
                got_resumed = take(resumed, 145)
                got_live = take(live, 50)
        assert frame_numbers(got_live) == list(range(100, 150))
        assert frame_numbers(got_resumed) == list(range(5, 150))  # every frame once, in order
        assert [e.position for e in got_resumed[95:]] == [e.position for e in got_live]
        assert [e.position for e in got_resumed[:95]] == [e.position for e in first[5:]]
    finally:
        metadata.close()


def test_the_service_stop_ends_its_reader_and_each_pipeline_has_its_own(
    redis_url: str,
) -> None:
    pipelines = [new_pipeline(), new_pipeline()]
    metadata = [Metadata(redis_url, p) for p in pipelines]
    one = Control(redis_url, pipelines[0])
    stopped = False
    try:
        with control(redis_url, pipelines[1]) as two:
            metadata[0].publish(range(3), "cam-a")
            metadata[1].publish(range(3), "cam-b")
            with (
                subscription(one.port, SubscribeRequest(from_oldest=True)) as first,
                subscription(two.port, SubscribeRequest(from_oldest=True)) as second,
            ):
                a, b = take(first, 3), take(second, 3)
                assert {e.frame.frame.stream_id for e in a} == {"cam-a"}
                assert {e.frame.frame.stream_id for e in b} == {"cam-b"}
                readers = [reader_thread(m.stream.key) for m in metadata]
                assert all(t is not None and t.is_alive() for t in readers)
                one.stop()
                stopped = True
                with pytest.raises(grpc.RpcError) as e:
                    take(first, 1)
                assert e.value.code() == grpc.StatusCode.UNAVAILABLE
                assert readers[0] is not None
                readers[0].join(2)
                assert not readers[0].is_alive()
                metadata[1].publish(range(3, 4), "cam-b")
                assert frame_numbers(take(second, 1)) == [3]  # the other service goes on
                assert readers[1] is not None and readers[1].is_alive()
    finally:
        if not stopped:
            one.stop()
        for m in metadata:
            m.close()


def reader_thread(key: str) -> threading.Thread | None:
    for thread in threading.enumerate():
        if thread.name == f"heron-fanout {key}":
            return thread
    return None
