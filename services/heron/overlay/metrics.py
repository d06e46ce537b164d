"""Overlay metrics beyond the runtime's per-stage latency: frames by result, and per sink."""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram

from heron.core.runtime import frame_exemplar
from heron.v1.frame_pb2 import FrameRef

# Capture to the sinks: tens of milliseconds on one host up to seconds behind a backlog.
CAPTURE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0)


class OverlayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.frames = Counter(
            "heron_overlay_frames_total",
            "Source frames handled, by result: drawn, overwritten (pixels gone before the "
            "overlay read them), duplicate (delivered again after an upstream restart), "
            "no_tile (source id beyond the tiler's grid), dead_lettered, waiting (the ring went "
            "with a killed ingest: left pending for the copy its successor publishes).",
            ["stream", "result"],
            registry=registry,
        )
        self.sink_frames = Counter(
            "heron_overlay_sink_frames_total",
            "Frames (video sinks) or metadata batches (broker sinks) a sink took.",
            ["sink", "kind"],
            registry=registry,
        )
        self.sink_errors = Counter(
            "heron_overlay_sink_errors_total",
            "Writes a sink failed (the frame is lost for that sink only).",
            ["sink", "kind"],
            registry=registry,
        )
        self.sink_seconds = Histogram(
            "heron_overlay_sink_write_seconds",
            "Time one write to a sink took.",
            ["sink", "kind"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=registry,
        )
        self.broker_messages = Counter(
            "heron_overlay_broker_messages_total",
            "Object messages a broker sink sent.",
            ["sink"],
            registry=registry,
        )
        self.capture_to_sink = Histogram(
            "heron_overlay_capture_to_sink_seconds",
            "Time from a frame's capture (ingest decoded it) to every sink having taken it.",
            ["stream"],
            buckets=CAPTURE_BUCKETS,
            registry=registry,
        )

    def reached_sinks(self, frames: Iterable[FrameRef]) -> None:
        """Every sink took these frames now: their end-to-end latency, per stream."""
        now_ns = time.time_ns()
        for ref in frames:
            if ref.HasField("capture_time"):  # one from before capture stamps: not measurable
                seconds = (now_ns - ref.capture_time.ToNanoseconds()) / 1e9
                self.capture_to_sink.labels(ref.stream_id).observe(
                    max(seconds, 0.0), frame_exemplar(ref)
                )
