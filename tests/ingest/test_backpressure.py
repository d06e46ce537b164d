"""LagGate against a real Redis: outstanding = undelivered + pending of the consumer group."""

from __future__ import annotations

import threading

import redis
from heron.core.bus import RedisBus
from heron.ingest.backpressure import DownstreamLag, LagGate
from prometheus_client import CollectorRegistry


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
    down = DownstreamLag(_bus(client), ["f:a", "f:b"], "meta", "overlay", max_lag=4)
    assert down.in_flight() == 0  # nothing published yet
    for key in ("f:a", "f:a", "f:b"):
        client.xadd(key, {"n": "x"})
    assert down.in_flight() == 3  # published, no metadata yet (inference still at work)
    ids = [client.xadd("meta", {"n": str(i)}) for i in range(3)]
    assert down.in_flight() == 3  # metadata out, but the overlay group does not exist yet
    client.xgroup_create("meta", "overlay", id="0")
    client.xreadgroup("overlay", "c", {"meta": ">"}, count=2)
    assert down.in_flight() == 3  # 2 pending, 1 undelivered
    client.xack("meta", "overlay", *ids[:2])
    assert down.in_flight() == 1
    client.xtrim("f:a", maxlen=0)  # trimmed frames were still published
    assert down.in_flight() == 1
    client.xdel("meta", ids[2])  # Redis loses the group's lag: counted from what is left
    assert down.in_flight() == 0
    client.close()


def test_gate_waits_for_the_downstream_reader_though_the_frame_group_keeps_up(
    redis_url: str,
) -> None:
    client = redis.Redis.from_url(redis_url)
    stop = threading.Event()
    down = DownstreamLag(_bus(client), ["f"], "meta", "overlay", max_lag=2)
    gate = LagGate(_bus(client), "f", "inference", max_lag=8, stop=stop, downstream=down)
    client.xgroup_create("f", "inference", id="0", mkstream=True)
    client.xgroup_create("meta", "overlay", id="0", mkstream=True)
    frames = [client.xadd("f", {"n": "x"}) for _ in range(2)]
    metas = [client.xadd("meta", {"n": "x"}) for _ in range(2)]
    client.xreadgroup("inference", "i", {"f": ">"})  # inference finished both frames at once
    client.xack("f", "inference", *frames)  # the overlay has not
    assert gate.outstanding() == 0 and down.in_flight() == 2

    def overlay_draws_one() -> None:
        client.xreadgroup("overlay", "o", {"meta": ">"}, count=1)
        client.xack("meta", "overlay", metas[0])

    timer = threading.Timer(0.2, overlay_draws_one)
    timer.start()
    waited = gate.wait()
    timer.join()
    assert waited > 0  # held until the overlay finished a frame
    assert down.in_flight() == 1
    client.close()
