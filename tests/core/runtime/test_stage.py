"""Stage: read → handle → publish → reject → ack, with held work, backoff and metrics."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from heron.core import streams
from heron.core.bus import BusSettings, Consumer, Publisher, RedisBus, RetentionSettings
from heron.core.bus.codec import PB_FIELD
from heron.core.runtime import (
    Received,
    Rejection,
    ServiceContext,
    ServiceSettings,
    Stage,
    Work,
    build_context,
)
from heron.v1.bus_pb2 import DeadLetter
from heron.v1.detection_pb2 import FrameMetadata
from prometheus_client import CollectorRegistry

from tests.core.bus.helpers import pending_ids, stream_entries


class Settings(ServiceSettings):
    service_name: str = "stage"


class UnavailableError(Exception):
    """Stands in for a backend that is restarting."""


def meta(n: int, label: str = "ok") -> FrameMetadata:
    return FrameMetadata(model_name=label, model_version=str(n))


class Harness:
    """A stage from metadata stream `in` to `out`, and what its hooks saw."""

    def __init__(self, bus: RedisBus, name: str, output_max_len: int = 100_000) -> None:
        self.ctx: ServiceContext[Settings] = build_context(Settings(), exit=lambda _: None)
        self.waits: list[float] = []
        self.ctx.wait = self.waits.append  # type: ignore[method-assign,assignment]
        self.source = streams.metadata("in", name)
        self.sink = streams.metadata("out", name)
        self.input: Consumer[FrameMetadata] = bus.consumer(self.source, FrameMetadata, "g", "c")
        self.input.ensure_group()
        tight = bus.settings.model_copy(
            update={"retention": RetentionSettings(keep_unread_max_len=output_max_len,
                                                   backpressure_timeout_s=0.05)}
        )  # fmt: skip
        self.output: Publisher[FrameMetadata] = RedisBus(
            tight, client=bus.client, registry=CollectorRegistry()
        ).publisher(self.sink, FrameMetadata)
        self.reads = 0
        self.handled = 0
        self.failures = 0  # handle raises UnavailableError this many more times
        self.stage: Stage[FrameMetadata, Work[FrameMetadata]] = Stage(
            self.ctx,
            name="echo",
            output=self.output,
            take=self.take,
            handle=self.handle,
            retry_initial_s=0.1,
            retry_max_s=0.3,
            retry_on=(UnavailableError,),
        )

    def take(self) -> Work[FrameMetadata] | None:
        got = self.input.read(count=10, block_ms=0)
        if not got:
            return None
        self.reads += 1
        return Work([Received(self.input, got)])

    def handle(self, work: Work[FrameMetadata]) -> None:
        self.handled += 1
        if self.failures:
            self.failures -= 1
            raise UnavailableError("backend restarting")
        for d in work.inputs[0].deliveries:
            if d.message.model_name == "bad":
                work.rejected.append(Rejection(self.input, d, "bad_metadata", "no good"))
            else:
                work.out.append(d.message)


@pytest.fixture
def bus(redis_url: str) -> Iterator[RedisBus]:
    fast = BusSettings(consumer={"block_ms": 100})
    with RedisBus.from_url(redis_url, fast, registry=CollectorRegistry()) as b:
        yield b


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def outputs(raw: redis.Redis, key: str) -> list[FrameMetadata]:
    return [FrameMetadata.FromString(e.fields[PB_FIELD]) for e in stream_entries(raw, key)]


def test_outputs_are_published_rejections_dead_lettered_then_inputs_acked(
    bus: RedisBus, raw: redis.Redis
) -> None:
    h = Harness(bus, "s1")
    bus.publisher(h.source, FrameMetadata).publish_many([meta(1), meta(2, "bad"), meta(3)])

    done = h.stage.step()

    assert done is not None and done.dead_lettered == 1
    assert [m.model_version for m in outputs(raw, h.sink.key)] == ["1", "3"]
    [entry] = stream_entries(raw, streams.dead_letter(h.source).key)
    letter = DeadLetter.FromString(entry.fields[PB_FIELD])
    assert (letter.reason, letter.type_name) == ("bad_metadata: no good", "heron.v1.FrameMetadata")
    assert pending_ids(raw, h.source.key, "g") == []
    assert h.stage.step() is None  # nothing more to read
    latency = h.ctx.metrics.registry.get_sample_value(
        "heron_stage_frames_total", {"pipeline": "", "stage": "echo.publish"}
    )
    assert latency == 2


def test_work_whose_publish_hits_backpressure_is_held_not_read_again(
    bus: RedisBus, raw: redis.Redis
) -> None:
    h = Harness(bus, "s2", output_max_len=3)
    raw.xgroup_create(h.sink.key, "reader", id="0", mkstream=True)
    h.output.publish_many([meta(90), meta(91)])  # a reader that has not caught up: one slot left
    bus.publisher(h.source, FrameMetadata).publish_many([meta(1), meta(2)])

    assert h.stage.step() is None  # only one of two fits: held
    assert h.stage.step() is None  # tried again, still full
    assert (h.reads, h.handled) == (1, 1)  # one read, handled once
    assert h.waits == [0.1, 0.1]  # a full stream clears by itself: no growing wait
    assert len(pending_ids(raw, h.source.key, "g")) == 2  # nothing acknowledged meanwhile

    raw.xreadgroup("reader", "r", {h.sink.key: ">"})  # the reader catches up
    raw.xack(h.sink.key, "reader", *[e.id for e in stream_entries(raw, h.sink.key)])
    done = h.stage.step()

    assert done is not None and h.reads == 1
    assert [m.model_version for m in outputs(raw, h.sink.key)][-2:] == ["1", "2"]
    assert pending_ids(raw, h.source.key, "g") == []


def test_a_retryable_failure_backs_off_and_handles_the_same_work_again(
    bus: RedisBus, raw: redis.Redis
) -> None:
    h = Harness(bus, "s3")
    h.failures = 3
    bus.publisher(h.source, FrameMetadata).publish_many([meta(1), meta(2, "bad")])

    results = [h.stage.step() for _ in range(4)]

    assert results[:3] == [None, None, None]
    assert results[3] is not None
    assert h.waits == [0.1, 0.2, 0.3]  # doubles, up to retry_max_s
    assert (h.reads, h.handled) == (1, 4)
    assert h.stage.retry_s == 0.1  # reset once the work is done
    assert len(stream_entries(raw, streams.dead_letter(h.source).key)) == 1  # sent once


def test_drain_leaves_work_that_still_cannot_finish_pending(
    bus: RedisBus, raw: redis.Redis
) -> None:
    h = Harness(bus, "s4")
    h.failures = 5
    bus.publisher(h.source, FrameMetadata).publish(meta(1))
    assert h.stage.step() is None

    assert h.stage.drain() is None

    assert len(pending_ids(raw, h.source.key, "g")) == 1  # redelivered after a restart
    assert outputs(raw, h.sink.key) == []
