"""The metrics every service exposes, on a registry of its own.

Each service process gets one `CollectorRegistry` (no global registry, nothing registered at
import) holding the process collectors and the standard set below. Anything else that owns
metrics in the process (the bus, a backend) is handed `ServiceMetrics.registry`, so a single
scrape of /metrics sees all of it. Labels follow Savant's per-stage convention: `stage` names the
pipeline stage, `pipeline` the pipeline the service belongs to. A stage's unit of work is often a
batch of several streams' frames, so these carry no `stream` label: per-stream counts are each
service's own (heron_ingest_frames_published_total, heron_inference_stream_frames_total, ...),
where `stream` is always the source (camera) id of heron.core.streams. docs/observability.md
lists every label and what it means.
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
    """`heron_service_up`, per-stage latency and frame counts, and process metrics.

    `pipeline` is the service's pipeline name ("" for a service outside one, e.g. the engine).
    """

    def __init__(
        self, service: str, registry: CollectorRegistry | None = None, *, pipeline: str = ""
    ) -> None:
        self.service = service
        self.pipeline = pipeline
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
            ["pipeline", "stage"],
            buckets=STAGE_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.stage_frames = Counter(
            "heron_stage_frames_total",
            "Frames a stage finished (counted once the work succeeded).",
            ["pipeline", "stage"],
            registry=self.registry,
        )

    def set_up(self, up: bool) -> None:
        self.up.labels(self.service).set(1 if up else 0)

    def observe(self, stage: str, seconds: float, frames: int = 1) -> None:
        """Record one finished unit of work of `frames` frames that took `seconds`."""
        self.stage_latency.labels(self.pipeline, stage).observe(seconds)
        self.stage_frames.labels(self.pipeline, stage).inc(frames)

    @contextmanager
    def track(self, stage: str, frames: int = 1) -> Iterator[None]:
        """Time the block and count its frames; a block that raises counts nothing."""
        start = time.perf_counter()
        yield
        self.observe(stage, time.perf_counter() - start, frames)
