"""The metrics every service exposes, on a registry of its own.

Each service process gets one `CollectorRegistry` (no global registry, nothing registered at
import) holding the process collectors and the standard set below. Anything else that owns
metrics in the process (the bus, a backend) is handed `ServiceMetrics.registry`, so a single
scrape of /metrics sees all of it. Labels follow Savant's per-stage convention: `stage` names the
pipeline stage, `stream` the source (camera) id of heron.core.streams.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

# One stage's work on one frame or batch: sub-millisecond (tracker) to seconds (CPU inference).
STAGE_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


class ServiceMetrics:
    """`heron_service_up`, per-stage latency and frame counts, and process metrics."""

    def __init__(self, service: str, registry: CollectorRegistry | None = None) -> None:
        self.service = service
        self.registry = CollectorRegistry() if registry is None else registry
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.up = Gauge(
            "heron_service_up",
            "1 while the service runs its main loop; 0 while starting, draining or stopped.",
            ["service"],
            registry=self.registry,
        )
        self.up.labels(service).set(0)
        self.stage_latency = Histogram(
            "heron_stage_latency_seconds",
            "Time one stage spent on one unit of work (a frame or a batch).",
            ["stage", "stream"],
            buckets=STAGE_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.frames_processed = Counter(
            "heron_frames_processed_total",
            "Frames a stage finished (counted once the work succeeded).",
            ["stage", "stream"],
            registry=self.registry,
        )

    def set_up(self, up: bool) -> None:
        self.up.labels(self.service).set(1 if up else 0)

    def observe(self, stage: str, stream: str, seconds: float, frames: int = 1) -> None:
        """Record one finished unit of work of `frames` frames that took `seconds`."""
        self.stage_latency.labels(stage, stream).observe(seconds)
        self.frames_processed.labels(stage, stream).inc(frames)

    @contextmanager
    def track(self, stage: str, stream: str, frames: int = 1) -> Iterator[None]:
        """Time the block and count its frames; a block that raises counts nothing."""
        start = time.perf_counter()
        yield
        self.observe(stage, stream, time.perf_counter() - start, frames)
