"""Streammux's own metrics, on the service's registry (next to heron_stage_* and the bus's)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

FILL_BUCKETS = (0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0)
WAIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28)


class StreammuxMetrics:
    def __init__(self, registry: CollectorRegistry, pipeline: str) -> None:
        self.pipeline = pipeline
        self.batches = Counter(
            "heron_streammux_batches_total",
            "Batches published, by what pushed them: full, timeout (batched-push-timeout), "
            "eos (a source ended), drain (the service stopped).",
            ["pipeline", "trigger"],
            registry=registry,
        )
        self.timeout_flushes = Counter(
            "heron_streammux_push_timeout_flushes_total",
            "Partial batches pushed because batched-push-timeout ran out.",
            ["pipeline"],
            registry=registry,
        )
        self.fill = Histogram(
            "heron_streammux_batch_fill_ratio",
            "Frames in a published batch divided by the batch size.",
            ["pipeline"],
            buckets=FILL_BUCKETS,
            registry=registry,
        )
        self.wait = Histogram(
            "heron_streammux_batch_wait_seconds",
            "Time from a batch's first frame coming to the batch being pushed: what the muxer "
            "adds to a frame's latency (batched-push-timeout bounds it).",
            ["pipeline"],
            buckets=WAIT_BUCKETS,
            registry=registry,
        )
        self.frames = Counter(
            "heron_streammux_frames_total",
            "Frames published in batches, per source stream.",
            ["stream"],
            registry=registry,
        )
        self.dropped = Counter(
            "heron_streammux_frames_dropped_total",
            "Frames read but not batched: overwritten (the producer's ring moved on), "
            "segment_gone (its writer exited), bad_frame (dead-lettered).",
            ["stream", "reason"],
            registry=registry,
        )
        self.sources = Gauge(
            "heron_streammux_sources",
            "Source streams being batched.",
            ["pipeline"],
            registry=registry,
        )

    def batch(self, trigger: str, frames: int, batch_size: int, waited_s: float = 0.0) -> None:
        self.batches.labels(self.pipeline, trigger).inc()
        self.wait.labels(self.pipeline).observe(waited_s)
        if trigger == "timeout":
            self.timeout_flushes.labels(self.pipeline).inc()
        self.fill.labels(self.pipeline).observe(frames / max(1, batch_size))

    def set_sources(self, count: int) -> None:
        self.sources.labels(self.pipeline).set(count)
