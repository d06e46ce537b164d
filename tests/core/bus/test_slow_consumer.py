"""A producer much faster than its consumer group, on a real Redis (and the in-process bus):
what the stream holds stays bounded, and what is lost is counted exactly.

- Frame streams (drop-oldest): XLEN never exceeds retention.drop_oldest_max_len (plus one
  macro node with `~`), heron_bus_dropped_total counts every trim, and
  heron_bus_dropped_unread_total{group} is exactly what that group never got: published minus
  delivered, once it has read what is left.
- Metadata streams (keep-unread): XLEN never exceeds retention.keep_unread_max_len; the
  publisher waits instead (heron_bus_backpressure_wait_seconds_total) and nothing is lost.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

import pytest
import redis
from heron.core import streams
from heron.core.bus import Bus, BusSettings, Consumer, MemoryTransport, RedisBus
from heron.core.streams import StreamName
from heron.v1.detection_pb2 import FrameMetadata
from heron.v1.frame_pb2 import FrameRef
from prometheus_client import CollectorRegistry

from tests.core.bus.helpers import metric

T = TypeVar("T", FrameRef, FrameMetadata)

PRODUCED = 3000
BATCH = 10  # frames per publish, as a fast source's burst
MAX_LEN = 50
# Redis's `MAXLEN ~` trims whole macro nodes (stream-node-max-entries, 100 by default).
NODE = 100


def slow_settings(settings: BusSettings, **retention: object) -> BusSettings:
    return settings.model_copy(
        update={"retention": settings.retention.model_copy(update=retention)}
    )


@pytest.fixture(params=["redis", "memory"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@contextmanager
def open_bus(
    transport: str, redis_url: str, settings: BusSettings, registry: CollectorRegistry
) -> Iterator[Bus]:
    bus: Bus
    if transport == "redis":
        bus = RedisBus.from_url(redis_url, settings, registry=registry)
    else:
        bus = MemoryTransport().bus(settings, registry)
    try:
        yield bus
    finally:
        bus.close()


class Producer:
    """Publishes PRODUCED messages in bursts of BATCH, as fast as the stream lets it, in a
    thread; `lengths` samples the stream's length after every publish."""

    def __init__(self, bus: Bus, stream: StreamName, make: type[FrameRef] | type[FrameMetadata]):
        self._publisher = bus.publisher(stream, make)
        self._tail = bus.tail(stream, make)
        self._make = make
        self.lengths: list[int] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _message(self, number: int) -> FrameRef | FrameMetadata:
        if self._make is FrameRef:
            return FrameRef(stream_id="cam-0", frame_number=number)
        return FrameMetadata(frame=FrameRef(stream_id="cam-0", frame_number=number))

    def _run(self) -> None:
        for first in range(0, PRODUCED, BATCH):
            self._publisher.publish_many([self._message(n) for n in range(first, first + BATCH)])
            self.lengths.append(self._tail.window().length)

    def join(self) -> None:
        self.thread.join(60)
        assert not self.thread.is_alive(), "the producer never finished"


def consume(consumer: Consumer[T], producer: Producer, pause_s: float) -> Iterator[int]:
    """Frame numbers a slow consumer gets: a few at a time with a pause after each read,
    acknowledged, until the producer is done and nothing is left."""
    while True:
        got = consumer.read(count=4, block_ms=50)
        consumer.ack(got)
        for delivery in got:
            message = delivery.message
            yield (
                message.frame_number
                if isinstance(message, FrameRef)
                else message.frame.frame_number
            )
        if not got and not producer.thread.is_alive():
            return
        time.sleep(pause_s)


@pytest.mark.parametrize("approximate", [False, True])
def test_a_slow_group_on_a_frame_stream_is_bounded_and_every_frame_it_lost_is_counted(
    transport: str,
    redis_url: str,
    settings: BusSettings,
    *,
    registry: CollectorRegistry,
    name: str,
    approximate: bool,
) -> None:
    if approximate and transport == "memory":
        pytest.skip("the in-process bus trims exactly")
    settings = slow_settings(settings, drop_oldest_max_len=MAX_LEN, approximate_trim=approximate)
    stream = streams.frames(name)
    with open_bus(transport, redis_url, settings, registry) as bus:
        slow = bus.consumer(stream, FrameRef, group="slow", name="slow-0")
        fast = bus.consumer(stream, FrameRef, group="fast", name="fast-0")
        slow.ensure_group()
        fast.ensure_group()
        producer = Producer(bus, stream, FrameRef)
        fast_got: list[int] = []
        fast_thread = threading.Thread(
            target=lambda: fast_got.extend(consume(fast, producer, 0)), daemon=True
        )
        fast_thread.start()
        slow_got = list(consume(slow, producer, 0.005))
        producer.join()
        fast_thread.join(30)
        left = bus.tail(stream, FrameRef).window().length

    bound = MAX_LEN + (NODE if approximate else 0)
    assert max(producer.lengths) <= bound  # what Redis holds stays bounded
    assert slow_got == sorted(set(slow_got))  # in order, none twice
    assert len(slow_got) < PRODUCED / 2  # it really was slow: most frames were trimmed unread

    def counted(name: str, **labels: str) -> float:
        return metric(registry, name, topic=stream.key, **labels)

    assert counted("heron_bus_published_total") == PRODUCED
    assert counted("heron_bus_dropped_total") == PRODUCED - left  # every trim
    # Exactly produced - delivered, per group: the slow one lost many, the fast one (nearly)
    # none, and each number matches what that consumer actually received.
    assert counted("heron_bus_dropped_unread_total", group="slow") == PRODUCED - len(slow_got)
    assert counted("heron_bus_dropped_unread_total", group="fast") == PRODUCED - len(fast_got)
    assert counted("heron_bus_consumed_total", group="slow") == len(slow_got)


def test_a_slow_group_on_a_metadata_stream_holds_the_publisher_back_and_loses_nothing(
    transport: str,
    redis_url: str,
    settings: BusSettings,
    registry: CollectorRegistry,
    name: str,
) -> None:
    settings = slow_settings(settings, keep_unread_max_len=MAX_LEN, backpressure_timeout_s=30.0)
    stream = streams.metadata("tracker", name)
    with open_bus(transport, redis_url, settings, registry) as bus:
        slow = bus.consumer(stream, FrameMetadata, group="overlay", name="overlay-0")
        slow.ensure_group()
        producer = Producer(bus, stream, FrameMetadata)
        got = list(consume(slow, producer, 0.001))
        producer.join()
        left = bus.tail(stream, FrameMetadata).window().length

    assert max(producer.lengths) <= MAX_LEN
    assert got == list(range(PRODUCED))  # every frame, in order, once

    def counted(name: str) -> float:
        return metric(registry, name, topic=stream.key)

    assert counted("heron_bus_published_total") == PRODUCED
    assert counted("heron_bus_trimmed_total") == PRODUCED - left  # only what was acknowledged
    assert counted("heron_bus_backpressure_wait_seconds_total") > 0  # the producer waited
    assert counted("heron_bus_backpressure_timeouts_total") == 0
    assert (
        metric(registry, "heron_bus_dropped_unread_total", topic=stream.key, group="overlay") == 0
    )


def test_xinfo_agrees_with_the_bound(
    redis_url: str, settings: BusSettings, registry: CollectorRegistry, raw: redis.Redis, name: str
) -> None:
    """Redis's own view after a burst far past the bound: XLEN is the bound, and the group's
    XINFO entry and what was counted add up."""
    settings = slow_settings(settings, drop_oldest_max_len=MAX_LEN)
    stream = streams.frames(name)
    with RedisBus.from_url(redis_url, settings, registry=registry) as bus:
        bus.consumer(stream, FrameRef, group="idle", name="idle-0").ensure_group()
        bus.publisher(stream, FrameRef).publish_many(
            [FrameRef(stream_id="cam-0", frame_number=n) for n in range(PRODUCED)]
        )
    info = raw.xinfo_stream(stream.key)
    assert (info["length"], info["entries-added"]) == (MAX_LEN, PRODUCED)
    lost = metric(registry, "heron_bus_dropped_unread_total", topic=stream.key, group="idle")
    assert lost == PRODUCED - MAX_LEN  # never read: all but what the stream still holds
