"""Consumer.reject: a stage dead-letters one delivery it cannot use, with its reason."""

from __future__ import annotations

import pytest
import redis
from heron.core import streams
from heron.core.bus import BackpressureError, BusSettings, RedisBus
from heron.core.bus.codec import PB_FIELD
from heron.v1.bus_pb2 import DeadLetter
from heron.v1.detection_pb2 import FrameMetadata
from heron.v1.frame_pb2 import FrameBatch, FrameRef
from prometheus_client import CollectorRegistry

from tests.core.bus.helpers import metric, pending_ids, stream_entries


def dead_letters(raw: redis.Redis, key: str) -> list[DeadLetter]:
    entries = stream_entries(raw, streams.dead_letter(key).key)
    return [DeadLetter.FromString(e.fields[PB_FIELD]) for e in entries]


def bad_meta(n: int) -> FrameMetadata:
    return FrameMetadata(model_name="detectnet", frame=FrameRef(stream_id="x", frame_number=n))


@pytest.mark.parametrize(
    ("detail", "text"),
    [
        ("box 0 has NaN", "bad_metadata: box 0 has NaN"),
        ("bad_metadata: already says so", "bad_metadata: already says so"),
        ("", "bad_metadata"),
    ],
)
def test_reject_dead_letters_the_delivery_and_acknowledges_it(
    *,
    bus: RedisBus,
    registry: CollectorRegistry,
    raw: redis.Redis,
    name: str,
    detail: str,
    text: str,
) -> None:
    stream = streams.metadata("inference", name)
    consumer = bus.consumer(stream, FrameMetadata, "tracker", "t-0")
    consumer.ensure_group()
    bus.publisher(stream, FrameMetadata).publish_many([bad_meta(1), bad_meta(2)])
    first, second = consumer.read(count=2)

    assert consumer.reject(first, "bad_metadata", detail) == text

    [letter] = dead_letters(raw, stream.key)
    assert letter.stream == stream.key
    assert letter.message_id == first.id
    assert letter.group == "tracker"
    assert letter.type_name == "heron.v1.FrameMetadata"
    assert letter.reason == text
    assert FrameMetadata.FromString(letter.payload) == bad_meta(1)
    assert letter.deliveries == 1
    assert letter.time.seconds > 0
    assert pending_ids(raw, stream.key, "tracker") == [second.id]  # only the rejected one acked
    labels = {"topic": stream.key, "group": "tracker", "reason": "bad_metadata"}
    assert metric(registry, "heron_bus_dead_lettered_total", **labels) == 1


def test_reject_of_a_part_names_it_and_can_leave_the_ack_to_the_caller(
    bus: RedisBus, raw: redis.Redis, name: str
) -> None:
    stream = streams.batches(name)
    consumer = bus.consumer(stream, FrameBatch, "inference", "i-0")
    consumer.ensure_group()
    frame = FrameRef(stream_id="source-9", frame_number=4)
    bus.publisher(stream, FrameBatch).publish(FrameBatch(batch_id=1, frames=[frame]))
    [batch] = consumer.read(count=1)

    consumer.reject(
        batch,
        "unknown_stream",
        "stream 'source-9' is not one of the pipeline's",
        payload=frame.SerializeToString(),
        type_name="heron.v1.FrameRef",
        ack=False,
    )

    [letter] = dead_letters(raw, stream.key)
    assert letter.type_name == "heron.v1.FrameRef"
    assert FrameRef.FromString(letter.payload) == frame
    assert letter.reason == "unknown_stream: stream 'source-9' is not one of the pipeline's"
    assert pending_ids(raw, stream.key, "inference") == [batch.id]  # still the caller's to ack


def test_reject_into_a_full_dead_letter_stream_acknowledges_nothing(
    *,
    bus: RedisBus,
    redis_url: str,
    settings: BusSettings,
    raw: redis.Redis,
    name: str,
) -> None:
    retention = settings.retention.model_copy(update={"keep_unread_max_len": 1})
    tight = settings.model_copy(update={"retention": retention})
    stream = streams.metadata("inference", name)
    bus.publisher(stream, FrameMetadata).publish_many([bad_meta(1), bad_meta(2)])
    # A group on the dead-letter stream that never reads: its one entry stays needed.
    raw.xgroup_create(streams.dead_letter(stream).key, "ops", id="0", mkstream=True)
    with RedisBus.from_url(redis_url, tight, registry=CollectorRegistry()) as small:
        consumer = small.consumer(stream, FrameMetadata, "tracker", "t-0")
        first, second = consumer.read(count=2)
        consumer.reject(first, "bad_metadata", "one")

        with pytest.raises(BackpressureError):
            consumer.reject(second, "bad_metadata", "two")

    assert pending_ids(raw, stream.key, "tracker") == [second.id]  # left for a retry
