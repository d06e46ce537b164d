"""Redis going away: publishers and consumers wait it out with backoff, then carry on.

These tests stop and restart the fixture's own redis-server, so they use its URL, never
REDIS_URL.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from heron.core import streams
from heron.core.bus import BusSettings, BusUnavailableError, RedisBus
from heron.v1.detection_pb2 import FrameMetadata
from heron.v1.frame_pb2 import FrameRef
from prometheus_client import CollectorRegistry

from tests.core.bus.helpers import metric, wait_until
from tests.support.redis_server import RedisServer


def meta(n: int) -> FrameMetadata:
    return FrameMetadata(model_version=str(n))


@pytest.fixture
def own_bus(
    redis_server: RedisServer, settings: BusSettings, registry: CollectorRegistry
) -> Iterator[RedisBus]:
    with RedisBus.from_url(redis_server.url, settings, registry=registry) as bus:
        yield bus


class Reader(threading.Thread):
    """Reads and acks in a loop, as a service would, until stopped."""

    def __init__(self, bus: RedisBus, stream: streams.StreamName) -> None:
        super().__init__(daemon=True)
        self.consumer = bus.consumer(stream, FrameMetadata, "g", "reader")
        self.consumer.ensure_group()
        self.got: list[str] = []
        self.errors: list[BaseException] = []
        self.done = threading.Event()

    def run(self) -> None:
        try:
            while not self.done.is_set():
                batch = self.consumer.read(count=10, block_ms=50)
                self.got += [d.message.model_version for d in batch]
                self.consumer.ack(batch)
        except BaseException as e:
            self.errors.append(e)

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=10)


def test_publisher_and_consumer_resume_after_redis_restart(
    own_bus: RedisBus, redis_server: RedisServer, name: str
) -> None:
    stream = streams.metadata("inference", name)
    publisher = own_bus.publisher(stream, FrameMetadata)
    reader = Reader(own_bus, stream)
    reader.start()
    publisher.publish_many([meta(n) for n in range(10)])
    wait_until(lambda: len(reader.got) >= 10, what="messages before the restart")

    redis_server.restart()  # no persistence: the stream and its group are gone
    after = [str(n) for n in range(10, 30)]
    for version in after:
        publisher.publish(FrameMetadata(model_version=version))
    wait_until(lambda: set(after) <= set(reader.got) or bool(reader.errors), what="resume")
    reader.stop()

    assert reader.errors == []
    assert reader.got[:10] == [str(n) for n in range(10)]
    assert sorted(reader.got[10:], key=int) == after


@pytest.mark.parametrize("role", ["publisher", "consumer"])
def test_outage_is_waited_out_and_counted(
    own_bus: RedisBus, redis_server: RedisServer, registry: CollectorRegistry, name: str, role: str
) -> None:
    stream = streams.metadata("inference", name)
    publisher = own_bus.publisher(stream, FrameMetadata)
    consumer = own_bus.consumer(stream, FrameMetadata, "g", "c1")
    consumer.ensure_group()
    result: list[str] = []

    def publish() -> None:
        result.append(publisher.publish(meta(1)))

    def read() -> None:
        result.extend(d.message.model_version for d in consumer.read(block_ms=2000))

    redis_server.stop()
    assert own_bus.ping() is False
    worker = threading.Thread(target=publish if role == "publisher" else read, daemon=True)
    worker.start()
    wait_until(
        lambda: metric(registry, "heron_bus_reconnects_total", topic=stream.key, role=role) >= 2,
        what=f"the {role} to retry",
    )
    assert result == []
    redis_server.start()
    if role == "consumer":
        wait_until(
            lambda: bool(own_bus.client.exists(stream.key)), what="the group to be created again"
        )
        publisher.publish(meta(1))
    worker.join(timeout=10)

    assert own_bus.ping() is True
    assert len(result) == 1
    if role == "consumer":
        assert result == ["1"]


@pytest.mark.parametrize("role", ["publisher", "consumer"])
def test_gives_up_when_redis_stays_away(
    redis_server: RedisServer, settings: BusSettings, registry: CollectorRegistry, role: str
) -> None:
    backoff = settings.backoff.model_copy(update={"give_up_after_s": 0.3})
    bus = RedisBus.from_url(
        redis_server.url, settings.model_copy(update={"backoff": backoff}), registry=registry
    )
    redis_server.stop()

    with pytest.raises(BusUnavailableError, match=f"Redis unreachable for .* while the {role}"):
        if role == "publisher":
            bus.publisher(streams.frames("cam0"), FrameRef).publish(FrameRef())
        else:
            bus.consumer(streams.frames("cam0"), FrameRef, "g", "c1").read()
