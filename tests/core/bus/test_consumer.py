"""Consumer groups: batched blocking reads, acks, reclaim, dead letters and poison messages."""

from __future__ import annotations

import threading

import pytest
import redis
from heron.core import streams
from heron.core.bus import BusSettings, Delivery, RedisBus
from heron.core.bus.codec import PB_FIELD, TIME_FIELD, TYPE_FIELD
from heron.v1.bus_pb2 import DeadLetter
from heron.v1.detection_pb2 import FrameMetadata
from heron.v1.frame_pb2 import FrameRef
from heron.v1.stream_pb2 import StreamEvent
from prometheus_client import CollectorRegistry

from tests.core.bus.helpers import add_raw, metric, pending_ids, stream_entries, wait_until


def meta(n: int) -> FrameMetadata:
    return FrameMetadata(model_name="detectnet", model_version=str(n))


def versions(batch: list[Delivery[FrameMetadata]]) -> list[str]:
    return [d.message.model_version for d in batch]


def with_consumer(settings: BusSettings, **options: int) -> BusSettings:
    return settings.model_copy(update={"consumer": settings.consumer.model_copy(update=options)})


def dead_letters(raw: redis.Redis, key: str) -> list[DeadLetter]:
    entries = stream_entries(raw, streams.dead_letter(key).key)
    return [DeadLetter.FromString(e.fields[PB_FIELD]) for e in entries]


def test_batched_reads_return_at_most_count_in_order(bus: RedisBus, name: str) -> None:
    stream = streams.metadata("inference", name)
    consumer = bus.consumer(stream, FrameMetadata, "g", "c1")
    consumer.ensure_group()
    bus.publisher(stream, FrameMetadata).publish_many([meta(n) for n in range(12)])

    batches = [consumer.read(count=5) for _ in range(3)]

    assert [versions(b) for b in batches] == [
        ["0", "1", "2", "3", "4"],
        ["5", "6", "7", "8", "9"],
        ["10", "11"],
    ]
    assert consumer.read(count=5, block_ms=20) == []
    assert consumer.read(count=5, block_ms=0) == []


def test_blocking_read_wakes_when_a_message_arrives(
    bus: RedisBus, raw: redis.Redis, name: str
) -> None:
    stream = streams.metadata("inference", name)
    consumer = bus.consumer(stream, FrameMetadata, "g", "c1")
    consumer.ensure_group()
    got: list[Delivery[FrameMetadata]] = []
    reader = threading.Thread(target=lambda: got.extend(consumer.read(count=10, block_ms=2500)))

    reader.start()
    wait_until(
        lambda: any(c.get("cmd") == "xreadgroup" and "b" in c["flags"] for c in raw.client_list()),
        what="the reader to block",
    )
    bus.publisher(stream, FrameMetadata).publish(meta(1))
    reader.join(timeout=5)

    assert versions(got) == ["1"]


def test_groups_each_get_every_message_and_members_share(bus: RedisBus, name: str) -> None:
    stream = streams.metadata("inference", name)
    a1 = bus.consumer(stream, FrameMetadata, "a", "a1")
    a2 = bus.consumer(stream, FrameMetadata, "a", "a2")
    b1 = bus.consumer(stream, FrameMetadata, "b", "b1")
    for c in (a1, a2, b1):
        c.ensure_group()
    bus.publisher(stream, FrameMetadata).publish_many([meta(n) for n in range(6)])

    first, second = a1.read(count=4), a2.read(count=4)

    assert versions(first) + versions(second) == [str(n) for n in range(6)]
    assert versions(b1.read(count=10)) == [str(n) for n in range(6)]


def test_ensure_group_is_idempotent(bus: RedisBus, name: str) -> None:
    consumer = bus.consumer(streams.events(name), StreamEvent, "g", "c1")

    assert consumer.ensure_group() is True
    assert consumer.ensure_group() is False


def test_idle_pending_messages_are_reclaimed_with_delivery_count(
    bus: RedisBus, registry: CollectorRegistry, raw: redis.Redis, name: str
) -> None:
    stream = streams.metadata("inference", name)
    stuck = bus.consumer(stream, FrameMetadata, "g", "stuck")
    helper = bus.consumer(stream, FrameMetadata, "g", "helper")
    stuck.ensure_group()
    bus.publisher(stream, FrameMetadata).publish_many([meta(n) for n in range(3)])
    taken = stuck.read(count=3)  # and never acknowledged

    got: list[Delivery[FrameMetadata]] = []

    def take_over() -> bool:
        got.extend(helper.read(count=10, block_ms=20))
        return len(got) >= 3

    wait_until(take_over, what="the helper to reclaim three messages")

    assert versions(got) == versions(taken)
    assert [d.deliveries for d in got] == [2, 2, 2]
    assert helper.ack(got) == 3
    assert stuck.ack(taken) == 0  # already done by the helper
    assert raw.xpending(stream.key, "g")["pending"] == 0
    assert metric(registry, "heron_bus_reclaimed_total", topic=stream.key, group="g") == 3


UNDECODABLE = [
    pytest.param({b"data": b"x"}, "missing_field", "fields present: 'data'", id="no-pb-field"),
    pytest.param(
        {PB_FIELD: FrameRef(frame_number=1).SerializeToString(), TYPE_FIELD: b"heron.v1.FrameRef"},
        "wrong_type",
        "type header is 'heron.v1.FrameRef', expected 'heron.v1.FrameMetadata'",
        id="wrong-type-header",
    ),
    pytest.param({PB_FIELD: b"\xff\xff\xff"}, "bad_protobuf", "do not parse", id="bad-protobuf"),
    pytest.param({PB_FIELD: b"", TIME_FIELD: b"noon"}, "bad_header", "ts header", id="bad-ts"),
]


@pytest.mark.parametrize(("fields", "reason", "says"), UNDECODABLE)
def test_undecodable_message_is_dead_lettered_and_acked(
    *,
    bus: RedisBus,
    registry: CollectorRegistry,
    raw: redis.Redis,
    name: str,
    fields: dict[bytes, bytes],
    reason: str,
    says: str,
) -> None:
    stream = streams.metadata("inference", name)
    consumer = bus.consumer(stream, FrameMetadata, "g", "c1")
    consumer.ensure_group()
    publisher = bus.publisher(stream, FrameMetadata)
    publisher.publish(meta(1))
    bad_id = add_raw(raw, stream.key, fields)
    publisher.publish(meta(2))

    batch = consumer.read(count=10)

    assert versions(batch) == ["1", "2"]  # the good ones still come through
    [letter] = dead_letters(raw, stream.key)
    assert letter.stream == stream.key
    assert letter.message_id == bad_id
    assert letter.group == "g"
    assert letter.type_name == "heron.v1.FrameMetadata"
    assert letter.reason.startswith(reason)
    assert says in letter.reason
    assert letter.payload == fields.get(PB_FIELD, b"")
    assert letter.deliveries == 1
    assert letter.time.seconds > 0
    assert pending_ids(raw, stream.key, "g") == [d.id for d in batch]  # the bad one was acked
    labels = {"topic": stream.key, "group": "g", "reason": reason}
    assert metric(registry, "heron_bus_dead_lettered_total", **labels) == 1


def test_message_delivered_too_often_is_dead_lettered_as_poison(
    redis_url: str, settings: BusSettings, registry: CollectorRegistry, raw: redis.Redis, name: str
) -> None:
    # min_idle_ms=0: every read takes back whatever is pending, so each read is a redelivery.
    tuned = with_consumer(settings, max_deliveries=3, min_idle_ms=0)
    bus = RedisBus.from_url(redis_url, tuned, registry=registry)
    stream = streams.metadata("inference", name)
    consumer = bus.consumer(stream, FrameMetadata, "g", "crashy")
    consumer.ensure_group()
    bus.publisher(stream, FrameMetadata).publish(meta(1))

    seen = [d.deliveries for _ in range(3) for d in consumer.read(count=1, block_ms=0)]
    last = consumer.read(count=1, block_ms=0)

    assert seen == [1, 2, 3]  # handed over max_deliveries times, never acknowledged
    assert last == []
    [letter] = dead_letters(raw, stream.key)
    assert letter.reason == "poison: delivered 4 times, more than max_deliveries=3"
    assert letter.deliveries == 4
    assert FrameMetadata.FromString(letter.payload) == meta(1)
    assert raw.xpending(stream.key, "g")["pending"] == 0
    labels = {"topic": stream.key, "group": "g", "reason": "poison"}
    assert metric(registry, "heron_bus_dead_lettered_total", **labels) == 1


def test_group_lost_by_redis_is_created_again(bus: RedisBus, raw: redis.Redis, name: str) -> None:
    stream = streams.metadata("inference", name)
    consumer = bus.consumer(stream, FrameMetadata, "g", "c1")
    consumer.ensure_group()
    raw.delete(stream.key)  # what a restart without persistence does to the group
    bus.publisher(stream, FrameMetadata).publish(meta(7))

    assert versions(consumer.read(count=10)) == ["7"]


@pytest.mark.parametrize("bad", ["", "two words", "tab\there"])
def test_group_and_consumer_names_are_checked(bus: RedisBus, name: str, bad: str) -> None:
    stream = streams.metadata("inference", name)
    with pytest.raises(ValueError, match="group: expected a non-empty name without spaces"):
        bus.consumer(stream, FrameMetadata, bad, "c1")
    with pytest.raises(ValueError, match="consumer name: expected"):
        bus.consumer(stream, FrameMetadata, "g", bad)


@pytest.mark.parametrize(("count", "block_ms"), [(0, 10), (-1, 10), (5, -1)])
def test_read_refuses_bad_arguments(bus: RedisBus, name: str, count: int, block_ms: int) -> None:
    consumer = bus.consumer(streams.metadata("inference", name), FrameMetadata, "g", "c1")

    with pytest.raises(ValueError, match=f"got count={count}, block_ms={block_ms}"):
        consumer.read(count=count, block_ms=block_ms)
