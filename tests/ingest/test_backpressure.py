"""LagGate against a real Redis: outstanding = undelivered + pending of the consumer group."""

from __future__ import annotations

import threading

import pytest
import redis
from heron.core import streams
from heron.core.bus import Bus, MemoryBus, MemoryStreams, RedisBus
from heron.ingest.backpressure import DownstreamLag, LagGate
from heron.v1.detection_pb2 import FrameMetadata
from heron.v1.frame_pb2 import FrameRef, SharedMemorySlot
from prometheus_client import CollectorRegistry

META = streams.metadata("tracker", "bp")


def _bus(client: redis.Redis) -> RedisBus:
    """The gate asks the bus; the test writes with the plain client beside it."""
    return RedisBus(client=client, registry=CollectorRegistry())


def test_outstanding_counts_unread_then_unacked(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    gate = LagGate(_bus(client), "k", "g", max_lag=3, stop=threading.Event())
    assert gate.outstanding() == 0  # no stream yet
    ids = [client.xadd("k", {"n": str(i)}) for i in range(5)]
    assert gate.outstanding() == 5  # no group yet: everything is unread
    client.xgroup_create("k", "g", id="0")
    assert gate.outstanding() == 5
    client.xreadgroup("g", "c", {"k": ">"}, count=2)
    assert gate.outstanding() == 5  # 3 undelivered + 2 pending
    client.xack("k", "g", *ids[:2])
    assert gate.outstanding() == 3
    client.xdel("k", ids[3])  # a deleted unread entry: Redis no longer knows the group's lag
    assert client.xinfo_groups("k")[0]["lag"] is None
    assert gate.outstanding() == 2  # counted from what is left after last-delivered
    client.close()


def test_wait_returns_when_the_group_catches_up_or_on_stop(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    stop = threading.Event()
    gate = LagGate(_bus(client), "k", "g", max_lag=2, stop=stop)
    client.xgroup_create("k", "g", id="0", mkstream=True)
    assert gate.wait() >= 0  # empty: room at once
    ids = [client.xadd("k", {"n": str(i)}) for i in range(2)]

    def consume() -> None:
        client.xreadgroup("g", "c", {"k": ">"}, count=2)
        client.xack("k", "g", *ids)

    timer = threading.Timer(0.2, consume)
    timer.start()
    waited = gate.wait()
    timer.join()
    assert gate.outstanding() == 0
    assert waited > 0

    client.xadd("k", {"n": "2"})
    client.xadd("k", {"n": "3"})
    threading.Timer(0.1, stop.set).start()
    gate.wait()  # returns because of the stop, not because of room
    assert gate.outstanding() == 2
    client.close()


def test_downstream_lag_counts_frames_the_last_reader_has_not_finished(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    down = DownstreamLag(_bus(client), ["f:a", "f:b"], META, "overlay", max_lag=4)
    assert down.in_flight() == 0  # nothing published yet
    for key in ("f:a", "f:a", "f:b"):
        client.xadd(key, {"n": "x"})
    assert down.in_flight() == 3  # published, no metadata yet (inference still at work)
    ids = [client.xadd(META.key, {"n": str(i)}) for i in range(3)]
    assert down.in_flight() == 3  # metadata out, but the overlay group does not exist yet
    client.xgroup_create(META.key, "overlay", id="0")
    client.xreadgroup("overlay", "c", {META.key: ">"}, count=2)
    assert down.in_flight() == 3  # 2 pending, 1 undelivered
    client.xack(META.key, "overlay", *ids[:2])
    assert down.in_flight() == 1
    client.xtrim("f:a", maxlen=0)  # trimmed frames were still published
    assert down.in_flight() == 1
    client.xdel(META.key, ids[2])  # Redis loses the group's lag: counted from what is left
    assert down.in_flight() == 0
    client.close()


def test_gate_waits_for_the_downstream_reader_though_the_frame_group_keeps_up(
    redis_url: str,
) -> None:
    client = redis.Redis.from_url(redis_url)
    stop = threading.Event()
    down = DownstreamLag(_bus(client), ["f"], META, "overlay", max_lag=2)
    gate = LagGate(_bus(client), "f", "inference", max_lag=8, stop=stop, downstream=down)
    client.xgroup_create("f", "inference", id="0", mkstream=True)
    client.xgroup_create(META.key, "overlay", id="0", mkstream=True)
    frames = [client.xadd("f", {"n": "x"}) for _ in range(2)]
    metas = [client.xadd(META.key, {"n": "x"}) for _ in range(2)]
    client.xreadgroup("inference", "i", {"f": ">"})  # inference finished both frames at once
    client.xack("f", "inference", *frames)  # the overlay has not
    assert gate.outstanding() == 0 and down.in_flight() == 2

    def overlay_draws_one() -> None:
        client.xreadgroup("overlay", "o", {META.key: ">"}, count=1)
        client.xack(META.key, "overlay", metas[0])

    timer = threading.Timer(0.2, overlay_draws_one)
    timer.start()
    waited = gate.wait()
    timer.join()
    assert waited > 0  # held until the overlay finished a frame
    assert down.in_flight() == 1
    client.close()


@pytest.fixture(params=["redis", "memory"])
def any_bus(request: pytest.FixtureRequest) -> Bus:
    if request.param == "memory":
        return MemoryBus(MemoryStreams(), registry=CollectorRegistry())
    return RedisBus.from_url(request.getfixturevalue("redis_url"), registry=CollectorRegistry())


def _ref(n: int, ring: str) -> FrameRef:
    return FrameRef(stream_id="a", frame_number=n, shm=SharedMemorySlot(segment=ring, slot=n))


def test_a_restarted_ingest_counts_only_the_frames_in_its_own_rings(any_bus: Bus) -> None:
    bus = any_bus
    frames = bus.publisher(streams.frames("a"), FrameRef)
    meta = bus.publisher(META, FrameMetadata)
    overlay = bus.consumer(META, FrameMetadata, "overlay", "o")
    # The killed ingest published frames 0-4 in ring "old"; 0-2 reached the overlay, which
    # leaves them pending (their pixels are gone) for the copies; 3 and 4 are still upstream.
    frames.publish_many([_ref(n, "old") for n in range(5)])
    meta.publish_many([FrameMetadata(frame=_ref(n, "old")) for n in range(3)])
    stale = overlay.read(count=3, block_ms=0)
    assert len(stale) == 3

    down = DownstreamLag(bus, [streams.frames("a").key], META, "overlay", max_lag=2)
    gate = LagGate(bus, streams.frames("a").key, "inference", 8, stop=threading.Event(),
                   downstream=down)  # fmt: skip
    assert down.in_flight() == 0  # however many stale frames wait, the new ring is empty
    assert gate.wait() < 0.5  # the copies can go out at once
    down.own_ring("new")
    frames.publish_many([_ref(n, "new") for n in range(2)])  # copies of frames 0 and 1
    assert down.in_flight() == 2
    meta.publish_many([FrameMetadata(frame=_ref(3, "old"))])  # a stale frame comes through
    assert down.in_flight() == 2
    late = overlay.read(count=1, block_ms=0)  # ... and waits for its copy too
    assert down.in_flight() == 2
    meta.publish_many([FrameMetadata(frame=_ref(0, "new"))])
    assert down.in_flight() == 2  # frame 0's copy is out of the tracker, not yet drawn
    drawn = overlay.read(count=1, block_ms=0)
    assert down.in_flight() == 2
    overlay.ack(drawn + stale + late)  # drawn; the stale ones are repeats now
    assert down.in_flight() == 1
    meta.publish_many([FrameMetadata(frame=_ref(1, "new"))])
    assert down.in_flight() == 1
    overlay.ack(overlay.read(count=1, block_ms=0))
    assert down.in_flight() == 0
    bus.close()


def test_a_source_added_at_run_time_counts_from_when_it_was_added(any_bus: Bus) -> None:
    bus = any_bus
    frames = bus.publisher(streams.frames("b"), FrameRef)
    frames.publish_many([_ref(n, "gone") for n in range(3)])  # a removed source's frames
    down = DownstreamLag(bus, [], META, "overlay", max_lag=2)
    down.add_frames(streams.frames("b").key)
    down.add_frames(streams.frames("b").key)  # once is enough
    assert down.in_flight() == 0
    frames.publish(_ref(3, "ring"))
    assert down.in_flight() == 1
    bus.close()
