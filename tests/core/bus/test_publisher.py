"""Typed publishing and per-kind retention against a real redis-server."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import redis
from google.protobuf.message import Message
from heron.core import streams
from heron.core.bus import (
    BackpressureError,
    BusSettings,
    RedisBus,
    RetentionSettings,
    StreamTypeError,
)
from heron.core.bus.codec import PB_FIELD, TIME_FIELD, TYPE_FIELD
from heron.core.streams import StreamName
from heron.v1.detection_pb2 import DetectedObject, FrameMetadata, StageTimestamp
from heron.v1.frame_pb2 import CudaIpcHandle, FrameRef, PixelFormat
from heron.v1.stream_pb2 import StreamEvent
from prometheus_client import CollectorRegistry

from tests.core.bus.helpers import metric, stream_entries, stream_ids, wait_until


def frame(n: int) -> FrameRef:
    return FrameRef(stream_id="cam0", frame_number=n, width=960, height=544)


def meta(n: int) -> FrameMetadata:
    return FrameMetadata(frame=frame(n), model_name="detectnet", model_version=str(n))


def small_bus(
    redis_url: str, settings: BusSettings, registry: CollectorRegistry, **limits: int
) -> RedisBus:
    retention = settings.retention.model_copy(update=limits)
    return RedisBus.from_url(
        redis_url, settings.model_copy(update={"retention": retention}), registry=registry
    )


ROUND_TRIP = [
    pytest.param(
        streams.frames,
        FrameRef(
            stream_id="cam0",
            frame_number=42,
            pts=3003,
            time_base_num=1,
            time_base_den=90000,
            width=1920,
            height=1080,
            pixel_format=PixelFormat.PIXEL_FORMAT_JPEG,
            jpeg=b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4,
        ),
        id="FrameRef-jpeg",
    ),
    pytest.param(
        streams.frames,
        FrameRef(
            stream_id="cam1",
            frame_number=1,
            cuda_ipc=CudaIpcHandle(device_id=0, handle=b"\x01" * 64, shape=[544, 960, 3]),
        ),
        id="FrameRef-cuda-ipc",
    ),
    pytest.param(
        lambda n: streams.metadata("inference", n),
        FrameMetadata(
            frame=frame(9),
            objects=[DetectedObject(class_id=1, label="no-mask", confidence=0.9, tracker_id=4)],
            model_name="detectnet",
            stages=[StageTimestamp(stage="inference")],
            inferred=True,
        ),
        id="FrameMetadata",
    ),
    pytest.param(streams.events, StreamEvent(stream_id="cam0"), id="StreamEvent"),
]


@pytest.mark.parametrize(("make_stream", "message"), ROUND_TRIP)
def test_round_trip(
    *,
    bus: RedisBus,
    raw: redis.Redis,
    registry: CollectorRegistry,
    name: str,
    make_stream: Callable[[str], StreamName],
    message: Message,
) -> None:
    stream = make_stream(name)
    consumer = bus.consumer(stream, type(message), "g", "c1")
    consumer.ensure_group()

    entry_id = bus.publisher(stream, type(message)).publish(message)
    [delivery] = consumer.read(count=10)

    assert delivery.message == message
    assert delivery.id == entry_id
    assert delivery.deliveries == 1
    assert delivery.published_ns is not None
    [entry] = stream_entries(raw, stream.key)
    assert set(entry.fields) == {PB_FIELD, TYPE_FIELD, TIME_FIELD}
    assert entry.fields[TYPE_FIELD] == stream.message_type.encode()
    assert consumer.ack([delivery]) == 1
    assert raw.xpending(stream.key, "g")["pending"] == 0
    assert metric(registry, "heron_bus_published_total", topic=stream.key) == 1
    assert metric(registry, "heron_bus_consumed_total", topic=stream.key, group="g") == 1
    assert metric(registry, "heron_bus_acked_total", topic=stream.key, group="g") == 1


def test_publisher_refuses_a_class_the_stream_does_not_carry(bus: RedisBus, name: str) -> None:
    with pytest.raises(StreamTypeError, match=r"carries heron\.v1\.FrameRef, got message class "):
        bus.publisher(streams.frames(name), FrameMetadata)
    with pytest.raises(StreamTypeError, match=r"carries heron\.v1\.FrameMetadata"):
        bus.consumer(streams.metadata("x", name), FrameRef, "g", "c")


def test_publish_refuses_a_message_of_another_type(bus: RedisBus, name: str) -> None:
    publisher = bus.publisher(streams.frames(name), FrameRef)

    with pytest.raises(StreamTypeError, match=r"got a heron\.v1\.detection_pb2\.FrameMetadata"):
        publisher.publish(meta(1))  # type: ignore[arg-type]


@pytest.mark.parametrize("batched", [True, False], ids=["publish_many", "publish"])
def test_frame_stream_keeps_latest_and_counts_drops(
    *,
    redis_url: str,
    settings: BusSettings,
    registry: CollectorRegistry,
    raw: redis.Redis,
    name: str,
    batched: bool,
) -> None:
    bus = small_bus(redis_url, settings, registry, drop_oldest_max_len=10)
    stream = streams.frames(name)
    publisher = bus.publisher(stream, FrameRef)
    # An unread consumer group does not protect frames: latest-frame-wins.
    bus.consumer(stream, FrameRef, "slow", "c1").ensure_group()

    if batched:
        ids = publisher.publish_many([frame(n) for n in range(25)])
    else:
        ids = [publisher.publish(frame(n)) for n in range(25)]

    assert len(ids) == 25
    assert stream_ids(raw, stream.key) == ids[-10:]
    assert metric(registry, "heron_bus_dropped_total", topic=stream.key) == 15
    assert metric(registry, "heron_bus_published_total", topic=stream.key) == 25


def test_metadata_is_never_trimmed_past_an_unacked_entry(
    redis_url: str, settings: BusSettings, registry: CollectorRegistry, raw: redis.Redis, name: str
) -> None:
    bus = small_bus(redis_url, settings, registry, keep_unread_max_len=5)
    stream = streams.metadata("inference", name)
    publisher = bus.publisher(stream, FrameMetadata)
    fast = bus.consumer(stream, FrameMetadata, "fast", "c1")
    slow = bus.consumer(stream, FrameMetadata, "slow", "c1")
    fast.ensure_group()
    slow.ensure_group()
    ids = publisher.publish_many([meta(n) for n in range(5)])
    fast.ack(fast.read(count=5))  # "fast" is done with all five
    slow_batch = slow.read(count=3)
    slow.ack(slow_batch[:2])  # "slow" acked 0 and 1, holds 2 pending, never read 3 and 4

    ids.append(publisher.publish(meta(5)))
    ids.append(publisher.publish(meta(6)))
    with pytest.raises(BackpressureError, match="at its bound of 5 entries") as raised:
        publisher.publish(meta(7))

    assert raised.value.remaining == 1
    assert stream_ids(raw, stream.key) == ids[2:]
    assert metric(registry, "heron_bus_trimmed_total", topic=stream.key) == 2
    assert metric(registry, "heron_bus_backpressure_timeouts_total", topic=stream.key) == 1
    # Everything "slow" has not acknowledged is still there for it.
    slow.ack(slow_batch[2:])
    rest = slow.read(count=10)
    assert [d.message.model_version for d in rest] == ["3", "4", "5", "6"]


def test_stream_without_groups_keeps_everything(
    redis_url: str, settings: BusSettings, registry: CollectorRegistry, raw: redis.Redis, name: str
) -> None:
    bus = small_bus(redis_url, settings, registry, keep_unread_max_len=3)
    publisher = bus.publisher(streams.events(name), StreamEvent)

    with pytest.raises(BackpressureError) as raised:
        publisher.publish_many([StreamEvent(stream_id=str(n)) for n in range(5)])

    assert len(raised.value.published_ids) == 3
    assert raised.value.remaining == 2
    assert raw.xlen(publisher.key) == 3
    assert publisher.trim_acked() == 0


def test_backpressure_releases_when_consumers_catch_up(
    redis_url: str, settings: BusSettings, registry: CollectorRegistry, raw: redis.Redis, name: str
) -> None:
    retention = RetentionSettings(keep_unread_max_len=4, backpressure_timeout_s=10)
    bus = RedisBus.from_url(
        redis_url, settings.model_copy(update={"retention": retention}), registry=registry
    )
    stream = streams.metadata("tracker", name)
    publisher = bus.publisher(stream, FrameMetadata)
    consumer = bus.consumer(stream, FrameMetadata, "g", "c1")
    consumer.ensure_group()
    publisher.publish_many([meta(n) for n in range(4)])
    published: list[str] = []
    blocked = threading.Thread(target=lambda: published.extend(publisher.publish_many([meta(4)])))

    blocked.start()
    wait_until(
        lambda: metric(registry, "heron_bus_backpressure_wait_seconds_total", topic=stream.key) > 0,
        what="the publisher to wait for room",
    )
    assert not published
    consumer.ack(consumer.read(count=2))
    blocked.join(timeout=10)

    assert len(published) == 1
    assert raw.xlen(stream.key) == 3  # two acknowledged entries trimmed, one added
    assert [d.message.model_version for d in consumer.read(count=10)] == ["2", "3", "4"]


def test_trim_acked_on_demand(bus: RedisBus, raw: redis.Redis, name: str) -> None:
    stream = streams.metadata("inference", name)
    publisher = bus.publisher(stream, FrameMetadata)
    consumer = bus.consumer(stream, FrameMetadata, "g", "c1")
    consumer.ensure_group()
    publisher.publish_many([meta(n) for n in range(6)])
    batch = consumer.read(count=4)
    consumer.ack([batch[0], batch[1], batch[3]])  # batch[2] still pending

    assert publisher.trim_acked() == 2
    assert stream_ids(raw, stream.key)[0] == batch[2].id
