"""Overlay metrics beyond the runtime's per-stage latency: frames by result, and per sink."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class OverlayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.frames = Counter(
            "heron_overlay_frames_total",
            "Source frames handled, by result: drawn, overwritten (pixels gone before the "
            "overlay read them), duplicate (delivered again after an upstream restart), "
            "no_tile (source id beyond the tiler's grid), dead_lettered.",
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
