"""One contract, two transports: what a stage relies on holds on Redis streams and in memory.

Every test here runs twice, on a `RedisBus` against a real redis-server and on a `MemoryBus`,
with the same assertions: the in-process runner is only honest if the stage code cannot tell
the two apart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from heron.core import streams
from heron.core.bus import (
    BackpressureError,
    Bus,
    BusSettings,
    MemoryBus,
    MemoryStreams,
    RedisBus,
    RetentionSettings,
    StreamTypeError,
)
from heron.v1.bus_pb2 import DeadLetter
from heron.v1.detection_pb2 import FrameMetadata
from heron.v1.frame_pb2 import FrameRef
from heron.v1.stream_pb2 import StreamEvent
from prometheus_client import CollectorRegistry

from tests.core.bus.helpers import metric

MakeBus = Callable[..., Bus]


def frame(n: int, stream_id: str = "cam0") -> FrameRef:
    return FrameRef(stream_id=stream_id, frame_number=n, width=960, height=544)


def meta(n: int) -> FrameMetadata:
    return FrameMetadata(frame=frame(n), model_name="m")


@pytest.fixture(params=["redis", "memory"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def make_bus(
    transport: str,
    request: pytest.FixtureRequest,
    settings: BusSettings,
    registry: CollectorRegistry,
) -> Iterator[MakeBus]:
    """`make_bus(**retention)`: a bus of the transport under test, sharing one set of streams."""
    shared = MemoryStreams()
    made: list[Bus] = []

    def build(**retention: float) -> Bus:
        tuned = settings.model_copy(
            update={"retention": settings.retention.model_copy(update=retention)}
        )
        bus: Bus
        if transport == "redis":
            url = request.getfixturevalue("redis_url")
            bus = RedisBus.from_url(url, tuned, registry=registry)
        else:
            bus = MemoryBus(shared, tuned, registry=registry)
        made.append(bus)
        return bus

    yield build
    for bus in made:
        bus.close()


def test_a_group_gets_each_entry_once_in_order_and_owes_it_until_acked(
    make_bus: MakeBus, name: str
) -> None:
    bus = make_bus()
    stream = streams.metadata("inference", name)
    out = bus.publisher(stream, FrameMetadata)
    reader = bus.consumer(stream, FrameMetadata, "tracker", "t-0")
    assert reader.ensure_group() is True and reader.ensure_group() is False
    ids = out.publish_many([meta(n) for n in range(5)])
    assert len(ids) == len(set(ids)) == 5
    assert bus.outstanding(stream.key, "tracker", 100) == 5
    first = reader.read(count=3, block_ms=0)
    assert [d.message.frame.frame_number for d in first] == [0, 1, 2]
    assert [d.id for d in first] == ids[:3] and all(d.deliveries == 1 for d in first)
    assert all(d.published_ns is not None for d in first)
    assert bus.outstanding(stream.key, "tracker", 100) == 5  # 2 unread + 3 pending
    assert reader.ack(first) == 3
    assert reader.ack(first) == 0  # acked twice counts once
    assert bus.outstanding(stream.key, "tracker", 100) == 2
    rest = reader.read(count=10, block_ms=0)
    assert [d.message.frame.frame_number for d in rest] == [3, 4]
    assert reader.read(count=10, block_ms=0) == []
    assert bus.groups_caught_up(stream.key) == {"tracker": False}  # read, not acked
    reader.ack(rest)
    assert bus.groups_caught_up(stream.key) == {"tracker": True}
    assert bus.entries_added(stream.key) == 5
    assert bus.newest_id(stream.key) == ids[-1]
    newest = bus.newest(stream, FrameMetadata)
    assert newest is not None and newest.frame.frame_number == 4


def test_a_scrape_reads_each_groups_lag_and_pending(
    make_bus: MakeBus, name: str, registry: CollectorRegistry
) -> None:
    """heron_bus_group_{lag,pending}_messages come from the bus when the registry is collected,
    for the groups this process reads; none before a group exists."""
    bus = make_bus()
    stream = streams.metadata("inference", name)
    reader = bus.consumer(stream, FrameMetadata, "tracker", "t-0")
    labels = {"topic": stream.key, "group": "tracker"}
    assert registry.get_sample_value("heron_bus_group_lag_messages", labels) is None
    reader.ensure_group()
    bus.publisher(stream, FrameMetadata).publish_many([meta(n) for n in range(5)])
    taken = reader.read(count=2, block_ms=0)
    assert metric(registry, "heron_bus_group_lag_messages", **labels) == 3
    assert metric(registry, "heron_bus_group_pending_messages", **labels) == 2
    reader.ack(taken)
    reader.ack(reader.read(count=10, block_ms=0))
    assert registry.get_sample_value("heron_bus_group_lag_messages", labels) == 0
    assert registry.get_sample_value("heron_bus_group_pending_messages", labels) == 0


def test_a_delivery_latency_names_its_message_in_the_exemplar(
    make_bus: MakeBus, name: str, registry: CollectorRegistry
) -> None:
    """The exemplar of heron_bus_delivery_latency_seconds is the entry id, which XRANGE reads."""
    bus = make_bus()
    stream = streams.metadata("inference", name)
    reader = bus.consumer(stream, FrameMetadata, "tracker", "t-0")
    reader.ensure_group()
    ids = bus.publisher(stream, FrameMetadata).publish_many([meta(0)])
    assert [d.id for d in reader.read(count=1, block_ms=0)] == ids
    exemplars = [
        s.exemplar
        for family in registry.collect()
        if family.name == "heron_bus_delivery_latency_seconds"
        for s in family.samples
        if s.exemplar is not None and s.labels["topic"] == stream.key
    ]
    assert [e.labels for e in exemplars] == [{"entry": ids[0]}]


def test_the_lag_of_a_trimmed_frame_stream_is_what_it_still_holds(
    make_bus: MakeBus, name: str, registry: CollectorRegistry
) -> None:
    """Redis's own lag counts entries trimmed before the group read them; the scrape does
    not: a latest-frame-wins stream of 3 never shows more than 3 waiting."""
    bus = make_bus(drop_oldest_max_len=3, approximate_trim=False)
    stream = streams.frames(f"{name}-cam")
    reader = bus.consumer(stream, FrameRef, "streammux", "m")
    reader.ensure_group()
    bus.publisher(stream, FrameRef).publish_many([frame(n) for n in range(10)])
    labels = {"topic": stream.key, "group": "streammux"}
    assert metric(registry, "heron_bus_group_lag_messages", **labels) == 3
    assert bus.outstanding(stream.key, "streammux", 100) == 3


def test_two_groups_each_read_everything(make_bus: MakeBus, name: str) -> None:
    bus = make_bus()
    stream = streams.metadata("tracker", name)
    a = bus.consumer(stream, FrameMetadata, "overlay", "o")
    b = bus.consumer(stream, FrameMetadata, "heron-run", "r")
    a.ensure_group()
    b.ensure_group()
    bus.publisher(stream, FrameMetadata).publish_many([meta(1), meta(2)])
    assert len(a.read(block_ms=0)) == 2 and len(b.read(block_ms=0)) == 2


def test_before_its_group_exists_every_entry_is_outstanding(make_bus: MakeBus, name: str) -> None:
    bus = make_bus()
    stream = streams.frames(f"{name}-cam")
    assert bus.outstanding(stream.key, "inference", 10) == 0  # no stream yet
    assert bus.entries_added(stream.key) == 0
    assert bus.groups_caught_up(stream.key) == {}
    assert bus.newest_id(stream.key) is None and bus.newest(stream, FrameRef) is None
    bus.publisher(stream, FrameRef).publish_many([frame(0), frame(1)])
    assert bus.outstanding(stream.key, "inference", 10) == 2
    # A group created later still reads what is on the stream (start_id "0", the default).
    got = bus.consumer(stream, FrameRef, "inference", "i").read(block_ms=0)
    assert [d.message.frame_number for d in got] == [0, 1]


def test_unfinished_is_what_some_group_owes_pending_or_unread_each_once(
    make_bus: MakeBus, name: str
) -> None:
    bus = make_bus()
    stream = streams.frames(f"{name}-cam")
    assert bus.unfinished(stream, FrameRef, 100) == []  # no stream yet
    bus.publisher(stream, FrameRef).publish_many([frame(n) for n in range(6)])

    def owed() -> list[int]:
        return [m.frame_number for m in bus.unfinished(stream, FrameRef, 100)]

    assert owed() == list(range(6))  # before a group exists nobody has read any
    fast = bus.consumer(stream, FrameRef, "fast", "f")
    slow = bus.consumer(stream, FrameRef, "slow", "s")
    slow.ensure_group()
    fast.ack(fast.read(count=6, block_ms=0))
    assert owed() == list(range(6))  # "slow" has been given nothing
    taken = slow.read(count=4, block_ms=0)
    slow.ack([taken[0], taken[2]])
    assert owed() == [1, 3, 4, 5]  # pending 1 and 3, unread 4 and 5: oldest first, once each
    assert [m.frame_number for m in bus.unfinished(stream, FrameRef, 1)] == [1, 4]
    slow.ack(taken + slow.read(count=6, block_ms=0))
    assert owed() == []


def test_unfinished_ids_are_a_groups_pending_and_unread_entries_after_an_id(
    make_bus: MakeBus, name: str
) -> None:
    bus = make_bus()
    stream = streams.metadata("tracker", name)
    assert bus.unfinished_ids(stream.key, "g", "0-0", 100) == []  # no stream yet
    ids = bus.publisher(stream, FrameMetadata).publish_many([meta(n) for n in range(6)])
    assert bus.unfinished_ids(stream.key, "g", ids[1], 100) == ids[2:]  # no group: all unread
    assert bus.unfinished_ids(stream.key, "g", ids[1], 2) == ids[2:4]
    consumer = bus.consumer(stream, FrameMetadata, "g", "c")
    taken = consumer.read(count=4, block_ms=0)
    consumer.ack([taken[0], taken[3]])
    # Pending 1 and 2, unread 4 and 5; after ids[1]: 2, 4 and 5, oldest first.
    assert bus.unfinished_ids(stream.key, "g", "0-0", 100) == [ids[1], ids[2], ids[4], ids[5]]
    assert bus.unfinished_ids(stream.key, "g", ids[1], 100) == [ids[2], ids[4], ids[5]]
    assert bus.unfinished_ids(stream.key, "g", ids[4], 100) == [ids[5]]
    assert bus.unfinished_ids(stream.key, "g", ids[1], 1) == [ids[2], ids[4]]  # 1 of each kind
    consumer.ack(taken + consumer.read(count=6, block_ms=0))
    assert bus.unfinished_ids(stream.key, "g", "0-0", 100) == []


def test_a_frame_stream_drops_its_oldest_and_counts_them(
    make_bus: MakeBus, name: str, registry: CollectorRegistry
) -> None:
    bus = make_bus(drop_oldest_max_len=3, approximate_trim=False)
    stream = streams.frames(f"{name}-cam")
    reader = bus.consumer(stream, FrameRef, "inference", "i")
    reader.ensure_group()
    bus.publisher(stream, FrameRef).publish_many([frame(n) for n in range(5)])
    assert [d.message.frame_number for d in reader.read(block_ms=0)] == [2, 3, 4]
    assert bus.entries_added(stream.key) == 5
    assert metric(registry, "heron_bus_dropped_total", topic=stream.key) == 2


def test_a_metadata_stream_waits_for_room_then_refuses_without_losing(
    make_bus: MakeBus, name: str
) -> None:
    bus = make_bus(keep_unread_max_len=3, backpressure_timeout_s=0.3)
    stream = streams.metadata("inference", name)
    out = bus.publisher(stream, FrameMetadata)
    reader = bus.consumer(stream, FrameMetadata, "tracker", "t")
    reader.ensure_group()
    out.publish_many([meta(n) for n in range(3)])
    with pytest.raises(BackpressureError) as full:
        out.publish_many([meta(3), meta(4)])
    assert full.value.published_ids == [] and full.value.remaining == 2
    # Room comes when the group acknowledges: a waiting publisher then gets in.
    got = reader.read(count=2, block_ms=0)
    threading.Timer(0.1, reader.ack, args=(got,)).start()
    started = time.monotonic()
    assert len(out.publish_many([meta(3), meta(4)])) == 2
    assert time.monotonic() - started >= 0.05
    assert [d.message.frame.frame_number for d in reader.read(block_ms=0)] == [2, 3, 4]


def test_a_read_waits_for_a_publish_up_to_its_block(make_bus: MakeBus, name: str) -> None:
    bus = make_bus()
    stream = streams.events(name)
    reader = bus.consumer(stream, StreamEvent, "g", "c")
    reader.ensure_group()
    started = time.monotonic()
    assert reader.read(block_ms=100) == []
    assert time.monotonic() - started >= 0.09
    publisher = bus.publisher(stream, StreamEvent)
    threading.Timer(0.05, publisher.publish, args=(StreamEvent(stream_id="cam0"),)).start()
    got = reader.read(block_ms=5000)
    assert [d.message.stream_id for d in got] == ["cam0"]


def test_reject_dead_letters_the_delivery_and_acks_it(make_bus: MakeBus, name: str) -> None:
    bus = make_bus()
    stream = streams.metadata("inference", name)
    reader = bus.consumer(stream, FrameMetadata, "tracker", "t")
    letters = bus.consumer(streams.dead_letter(stream), DeadLetter, "ops", "o")
    letters.ensure_group()
    bus.publisher(stream, FrameMetadata).publish(meta(7))
    (delivery,) = reader.read(block_ms=0)
    text = reader.reject(delivery, "unknown_stream", "cam9 is not in the pipeline")
    assert text == "unknown_stream: cam9 is not in the pipeline"
    assert bus.outstanding(stream.key, "tracker", 10) == 0
    (letter,) = letters.read(block_ms=0)
    assert letter.message.reason == text and letter.message.group == "tracker"
    assert FrameMetadata.FromString(letter.message.payload).frame.frame_number == 7


def test_stream_keys_match_a_glob(make_bus: MakeBus, name: str) -> None:
    bus = make_bus()
    for cam in ("a", "b"):
        bus.publisher(streams.frames(f"{name}-{cam}"), FrameRef).publish(frame(0))
    pattern = streams.frames(name).key.removesuffix(name) + f"{name}-*"
    assert sorted(bus.stream_keys(pattern)) == sorted(
        streams.frames(f"{name}-{cam}").key for cam in ("a", "b")
    )


def test_a_publisher_refuses_a_message_the_stream_does_not_carry(
    make_bus: MakeBus, name: str
) -> None:
    bus = make_bus()
    with pytest.raises(StreamTypeError):
        bus.publisher(streams.frames(name), FrameMetadata)
    out = bus.publisher(streams.frames(name), FrameRef)
    with pytest.raises(StreamTypeError, match="FrameMetadata"):
        out.publish(meta(1))  # type: ignore[arg-type]


def test_memory_messages_are_copies_no_stage_shares_an_object() -> None:
    bus = MemoryBus(MemoryStreams(), BusSettings(retention=RetentionSettings()))
    stream = streams.metadata("inference", "copies")
    reader = bus.consumer(stream, FrameMetadata, "g", "c")
    reader.ensure_group()
    sent = meta(1)
    bus.publisher(stream, FrameMetadata).publish(sent)
    sent.model_name = "changed after publish"
    (got,) = reader.read(block_ms=0)
    assert got.message.model_name == "m"
