"""Per-stream ingest metrics, registered on the service's registry (served at /metrics).

Frames trimmed from a frame stream under latest-frame-wins are counted by the bus as
`heron_bus_dropped_total{stream="heron:frames:<id>"}` on the same registry.
"""

from __future__ import annotations

import threading
import time

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge

from heron.ingest.state import StreamState


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.decoded = Counter(
            "heron_ingest_frames_decoded_total", "Frames decoded.", ["stream"], registry=registry
        )
        self.published = Counter(
            "heron_ingest_frames_published_total",
            "Frame references published to the stream's frame stream.",
            ["stream"],
            registry=registry,
        )
        self.skipped = Counter(
            "heron_ingest_frames_skipped_total",
            "Decoded frames not published because of drop-frame-interval.",
            ["stream"],
            registry=registry,
        )
        self.reconnects = Counter(
            "heron_ingest_reconnects_total",
            "Reconnect attempts after a live source went away, stalled or refused.",
            ["stream"],
            registry=registry,
        )
        self.errors = Counter(
            "heron_ingest_errors_total",
            "Source errors; fatal ones end the stream.",
            ["stream", "fatal"],
            registry=registry,
        )
        self.fps = Gauge(
            "heron_ingest_frames_per_second",
            "Frames published per second over the last second or so.",
            ["stream"],
            registry=registry,
        )
        self.source_fps = Gauge(
            "heron_ingest_source_frames_per_second",
            "The source's own frame rate as its media states it (what fps out is held to).",
            ["stream"],
            registry=registry,
        )
        self.state = Enum(
            "heron_ingest_stream_state",
            "The stream's life-cycle state.",
            ["stream"],
            states=[s.value for s in StreamState],
            registry=registry,
        )
        self.backpressure_wait = Counter(
            "heron_ingest_backpressure_wait_seconds_total",
            "every_frame: time spent waiting for the consumer group to catch up.",
            ["stream"],
            registry=registry,
        )

    def start_stream(self, stream: str) -> None:
        """Every counter of `stream` at 0 from the start, so a dashboard and a rate() see "none
        yet" rather than no series (Prometheus's advice for labelled counters)."""
        for counter in (self.decoded, self.published, self.skipped, self.reconnects):
            counter.labels(stream)
        for fatal in ("false", "true"):
            self.errors.labels(stream, fatal)
        self.backpressure_wait.labels(stream)


class FpsMeter:
    """Publishes frames per second to a gauge about once a second."""

    def __init__(self, gauge: Gauge, window_s: float = 1.0) -> None:
        self._gauge = gauge
        self._window_s = window_s
        self._lock = threading.Lock()
        self._count = 0
        self._since = time.monotonic()
        self._rate = 0.0

    def tick(self) -> None:
        with self._lock:
            self._count += 1
            elapsed = time.monotonic() - self._since
            if elapsed >= self._window_s:
                self._rate = self._count / elapsed
                self._gauge.set(self._rate)
                self._count = 0
                self._since = time.monotonic()

    def idle(self) -> None:
        """The stream stopped delivering (reconnecting, ended): report 0, not a stale rate."""
        with self._lock:
            self._gauge.set(0)
            self._rate = 0.0
            self._count = 0
            self._since = time.monotonic()

    def current(self) -> float:
        """Frames per second over the last window. A stream that went quiet without an idle()
        (ingest waiting for consumers, a stalled read) fades: the next frame has not come, so
        the rate is at most one more frame than counted over the time since the window began."""
        with self._lock:
            elapsed = time.monotonic() - self._since
            if elapsed <= self._window_s:
                return self._rate
            return min(self._rate, (self._count + 1) / elapsed)
