"""LagGate against a real Redis: outstanding = undelivered + pending of the consumer group."""

from __future__ import annotations

import threading

import redis
from heron.ingest.backpressure import LagGate


def test_outstanding_counts_unread_then_unacked(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    gate = LagGate(client, "k", "g", max_lag=3, stop=threading.Event())
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
    gate = LagGate(client, "k", "g", max_lag=2, stop=stop)
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
