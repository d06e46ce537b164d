"""Prometheus metrics of the bus, per stream, with units in their names.

The registry is injectable so tests (and processes that host several buses) can use their own;
`default_metrics()` registers on the global REGISTRY once, on first use, never at import.
"""

from __future__ import annotations

import functools

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

# Publish-to-read latency: sub-millisecond on loopback up to many seconds behind a backlog.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30)


class BusMetrics:
    """Counters every publisher and consumer of one process share."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        reg = REGISTRY if registry is None else registry
        self.registry = reg
        self.published = Counter(
            "heron_bus_published_total", "Messages added to a stream.", ["stream"], registry=reg
        )
        self.dropped = Counter(
            "heron_bus_dropped_total",
            "Entries trimmed from a drop-oldest (frame) stream, read or not.",
            ["stream"],
            registry=reg,
        )
        self.trimmed = Counter(
            "heron_bus_trimmed_total",
            "Entries trimmed from a keep-unread stream after every group acknowledged them.",
            ["stream"],
            registry=reg,
        )
        self.backpressure_wait = Counter(
            "heron_bus_backpressure_wait_seconds_total",
            "Time publishers spent waiting for room in a full keep-unread stream.",
            ["stream"],
            registry=reg,
        )
        self.backpressure_timeouts = Counter(
            "heron_bus_backpressure_timeouts_total",
            "Publishes that gave up because a keep-unread stream stayed full.",
            ["stream"],
            registry=reg,
        )
        self.consumed = Counter(
            "heron_bus_consumed_total",
            "Messages handed to a consumer (redeliveries included).",
            ["stream", "group"],
            registry=reg,
        )
        self.reclaimed = Counter(
            "heron_bus_reclaimed_total",
            "Messages taken over from an idle (presumed dead) consumer.",
            ["stream", "group"],
            registry=reg,
        )
        self.acked = Counter(
            "heron_bus_acked_total", "Messages acknowledged.", ["stream", "group"], registry=reg
        )
        self.dead_lettered = Counter(
            "heron_bus_dead_lettered_total",
            "Messages moved to the dead-letter stream, by reason.",
            ["stream", "group", "reason"],
            registry=reg,
        )
        self.reconnects = Counter(
            "heron_bus_reconnects_total",
            "Retries after Redis went away (connection refused, reset or timed out).",
            ["stream", "role"],
            registry=reg,
        )
        self.delivery_latency = Histogram(
            "heron_bus_delivery_latency_seconds",
            "Time from publish to first delivery to a consumer.",
            ["stream", "group"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )


@functools.cache
def default_metrics() -> BusMetrics:
    """The process's bus metrics on the global REGISTRY (created once, when first needed)."""
    return BusMetrics(REGISTRY)
