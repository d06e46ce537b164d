"""Heartbeats: a service on the bus says every status interval whether it serves and why not,
and its last word at stop is that it stopped; a Redis that is away never holds a stop up."""

from __future__ import annotations

import threading
import time

from heron.core import streams
from heron.core.bus import BusSettings, MemoryBus, MemoryStreams, MemoryTransport, TailEntry
from heron.core.bus.tail import START
from heron.core.runtime import (
    BusClientSettings,
    FlagCheck,
    Service,
    ServiceContext,
    build_context,
    serve,
)
from heron.v1.control_pb2 import ServiceStatus
from prometheus_client import CollectorRegistry

PIPELINE = "status-test"


class Idle(Service[BusClientSettings]):
    """Ready once `ready` is set; steps until stopped."""

    def start(self) -> None:
        self.ready = self.ctx.readiness.add(FlagCheck("model loaded"))
        self.ctx.status.model_name = "facemask"

    def step(self) -> None:
        self.ctx.wait(0.02)


def run(ctx: ServiceContext[BusClientSettings], holder: list[Idle]) -> threading.Thread:
    def build(c: ServiceContext[BusClientSettings]) -> Idle:
        holder.append(Idle(c))
        return holder[0]

    thread = threading.Thread(target=serve, args=(build, ctx), daemon=True)
    thread.start()
    return thread


def heartbeats(shared: MemoryStreams) -> list[ServiceStatus]:
    bus = MemoryBus(shared, BusSettings(), registry=CollectorRegistry())
    tail = bus.tail(streams.service_status(PIPELINE), ServiceStatus)
    entries: list[TailEntry[ServiceStatus]] = tail.read(START, 1000).entries
    return [e.message for e in entries if e.message is not None]


def wait_for(shared: MemoryStreams, condition: object, timeout_s: float = 5.0) -> ServiceStatus:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for status in heartbeats(shared):
            if callable(condition) and condition(status):
                return status
        time.sleep(0.02)
    raise AssertionError("no such heartbeat")


def test_heartbeats_say_serving_or_why_not_and_stopped_at_the_end() -> None:
    shared = MemoryStreams()
    settings = BusClientSettings(
        service_name="inference", pipeline=PIPELINE, status_interval_s=0.05
    )
    ctx = build_context(
        settings, CollectorRegistry(), exit=lambda _c: None, transport=MemoryTransport(shared)
    )
    holder: list[Idle] = []
    thread = run(ctx, holder)
    waiting = wait_for(shared, lambda s: not s.serving)
    assert (waiting.name, waiting.model_name) == ("inference", "facemask")
    assert waiting.detail == "model loaded: not set yet"
    assert waiting.HasField("time")
    holder[0].ready.set("v3")
    wait_for(shared, lambda s: s.serving and s.detail == "")
    ctx.stop("test")
    thread.join(5)
    last = heartbeats(shared)[-1]
    assert (last.serving, last.detail) == (False, "stopped")


def test_no_heartbeats_when_the_interval_is_0() -> None:
    shared = MemoryStreams()
    settings = BusClientSettings(service_name="tracker", pipeline=PIPELINE, status_interval_s=0)
    ctx = build_context(
        settings, CollectorRegistry(), exit=lambda _c: None, transport=MemoryTransport(shared)
    )
    thread = run(ctx, [])
    time.sleep(0.2)
    ctx.stop("test")
    thread.join(5)
    assert heartbeats(shared) == []


def test_a_redis_that_is_away_does_not_hold_up_the_stop() -> None:
    settings = BusClientSettings(
        service_name="tracker",
        pipeline=PIPELINE,
        status_interval_s=0.2,
        redis_url="redis://127.0.0.1:1/0",
    )
    ctx = build_context(settings, CollectorRegistry(), exit=lambda _c: None)
    thread = run(ctx, [])
    time.sleep(0.3)
    started = time.monotonic()
    ctx.stop("test")
    thread.join(10)
    assert not thread.is_alive()
    assert time.monotonic() - started < 3.0
