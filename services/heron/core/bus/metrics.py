"""Prometheus metrics of the bus, per Redis stream, with units in their names.

The Redis stream (`heron:frames:cam-1`, `heron:meta:facemask:inference`) is the `topic` label:
`stream` means a source (camera) id everywhere in Heron's metrics. The registry is injectable so
tests (and processes that host several buses) can use their own; `default_metrics()` registers
on the global REGISTRY once, on first use, never at import.

A delivery latency carries the message's entry id as its exemplar (`{entry="1733590000000-0"}`):
`XRANGE <topic> <id> <id>` reads that message back while the topic holds it.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterator

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# One consumer group's backlog on its topic, asked at scrape time: (lag, pending), or None
# while the group does not exist yet.
Backlog = Callable[[], "tuple[int, int] | None"]

# Publish-to-read latency: sub-millisecond on loopback up to many seconds behind a backlog.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30)


class BusMetrics:
    """Counters every publisher and consumer of one process share."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        reg = REGISTRY if registry is None else registry
        self.registry = reg
        self.published = Counter(
            "heron_bus_published_total", "Messages added to a stream.", ["topic"], registry=reg
        )
        self.dropped = Counter(
            "heron_bus_dropped_total",
            "Entries trimmed from a drop-oldest (frame) stream, read or not.",
            ["topic"],
            registry=reg,
        )
        self.dropped_unread = Counter(
            "heron_bus_dropped_unread_total",
            "Entries trimmed from a drop-oldest (frame) stream before the consumer group was "
            "given them: what a slow group lost. Its first deliveries plus this are what was "
            "published, less what the stream still holds unread.",
            ["topic", "group"],
            registry=reg,
        )
        self.trimmed = Counter(
            "heron_bus_trimmed_total",
            "Entries trimmed from a keep-unread stream after every group acknowledged them.",
            ["topic"],
            registry=reg,
        )
        self.backpressure_wait = Counter(
            "heron_bus_backpressure_wait_seconds_total",
            "Time publishers spent waiting for room in a full keep-unread stream.",
            ["topic"],
            registry=reg,
        )
        self.backpressure_timeouts = Counter(
            "heron_bus_backpressure_timeouts_total",
            "Publishes that gave up because a keep-unread stream stayed full.",
            ["topic"],
            registry=reg,
        )
        self.consumed = Counter(
            "heron_bus_consumed_total",
            "Messages handed to a consumer (redeliveries included).",
            ["topic", "group"],
            registry=reg,
        )
        self.reclaimed = Counter(
            "heron_bus_reclaimed_total",
            "Messages taken over from an idle (presumed dead) consumer.",
            ["topic", "group"],
            registry=reg,
        )
        self.acked = Counter(
            "heron_bus_acked_total", "Messages acknowledged.", ["topic", "group"], registry=reg
        )
        self.dead_lettered = Counter(
            "heron_bus_dead_lettered_total",
            "Messages moved to the dead-letter stream, by reason.",
            ["topic", "group", "reason"],
            registry=reg,
        )
        self.reconnects = Counter(
            "heron_bus_reconnects_total",
            "Retries after Redis went away (connection refused, reset or timed out).",
            ["topic", "role"],
            registry=reg,
        )
        self.delivery_latency = Histogram(
            "heron_bus_delivery_latency_seconds",
            "Time from publish to first delivery to a consumer.",
            ["topic", "group"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.backlog = GroupBacklog()
        reg.register(self.backlog)

    def watch_group(self, topic: str, group: str, backlog: Backlog) -> None:
        """Export `group`'s lag and pending on `topic` at each scrape (its consumers call this)."""
        self.backlog.watch(topic, group, backlog)


class GroupBacklog(Collector):
    """heron_bus_group_lag_messages and heron_bus_group_pending_messages of the consumer groups
    this process reads, read from the bus when Prometheus scrapes (never on the hot path)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watched: dict[tuple[str, str], Backlog] = {}

    def watch(self, topic: str, group: str, backlog: Backlog) -> None:
        with self._lock:
            self._watched[topic, group] = backlog

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        lag, pending = self._families()
        with self._lock:
            watched = list(self._watched.items())
        for (topic, group), backlog in watched:
            try:
                got = backlog()
            except (RedisError, OSError) as e:  # Redis away: leave it out, not the whole scrape
                log.debug("backlog of %s on %s unknown: %s", group, topic, e)
                continue
            if got is not None:
                lag.add_metric([topic, group], got[0])
                pending.add_metric([topic, group], got[1])
        yield lag
        yield pending

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        labels = ["topic", "group"]
        lag = GaugeMetricFamily(
            "heron_bus_group_lag_messages",
            "Entries of the topic not yet delivered to the consumer group.",
            labels=labels,
        )
        pending = GaugeMetricFamily(
            "heron_bus_group_pending_messages",
            "Entries delivered to the consumer group and not yet acknowledged.",
            labels=labels,
        )
        return lag, pending


@functools.cache
def default_metrics() -> BusMetrics:
    """The process's bus metrics on the global REGISTRY (created once, when first needed)."""
    return BusMetrics(REGISTRY)
