"""A consumer killed mid-batch loses nothing: another member of its group takes its messages."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import redis
from heron.core import streams
from heron.core.bus import Delivery, RedisBus
from heron.v1.detection_pb2 import FrameMetadata
from prometheus_client import CollectorRegistry

from tests.conftest import REPO
from tests.core.bus.helpers import metric, wait_until


def test_killed_consumer_pending_messages_are_reclaimed(
    bus: RedisBus, registry: CollectorRegistry, raw: redis.Redis, redis_url: str, name: str
) -> None:
    stream = streams.metadata("inference", name)
    bus.consumer(stream, FrameMetadata, "g", "survivor").ensure_group()
    published = bus.publisher(stream, FrameMetadata).publish_many(
        [FrameMetadata(model_version=str(n)) for n in range(20)]
    )
    args = [redis_url, "inference", name, "g", "doomed", "8"]
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.core.bus.crashing_consumer", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        taken = json.loads(child.stdout.readline() or "null")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert taken == published[:8], "the child did not read its batch"
    assert raw.xpending(stream.key, "g")["consumers"] == [{"name": b"doomed", "pending": 8}]

    survivor = bus.consumer(stream, FrameMetadata, "g", "survivor")
    got: dict[str, Delivery[FrameMetadata]] = {}

    def drain() -> bool:
        batch = survivor.read(count=5, block_ms=20)
        got.update((d.id, d) for d in batch)
        survivor.ack(batch)
        return len(got) == len(published)

    wait_until(drain, what="the survivor to get all 20 messages")

    assert sorted(got) == sorted(published)
    assert {i for i, d in got.items() if d.deliveries == 2} == set(taken)
    assert raw.xpending(stream.key, "g")["pending"] == 0
    assert metric(registry, "heron_bus_reclaimed_total", topic=stream.key, group="g") == 8
