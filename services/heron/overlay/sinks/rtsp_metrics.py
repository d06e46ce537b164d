"""Prometheus metrics of RTSP servers, registered on the registry the caller hands in."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class RtspMetrics:
    """Frames pushed and dropped, and viewers connected, per server (`port` and `mount`).

    Build one per registry and share it between the servers of a process: prometheus_client
    refuses to register the same metric name twice on one registry.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = CollectorRegistry() if registry is None else registry
        labels = ["port", "mount"]
        self.frames_pushed = Counter(
            "heron_rtsp_frames_pushed_total",
            "Frames handed to the RTSP server's encoder pipeline.",
            labels,
            registry=self.registry,
        )
        self.frames_encoded = Counter(
            "heron_rtsp_frames_encoded_total",
            "Frames the RTSP server's encoder put out (shared by all its viewers).",
            labels,
            registry=self.registry,
        )
        self.frames_dropped = Counter(
            "heron_rtsp_frames_dropped_total",
            "Frames push() accepted that were never encoded: no viewer, or the encoder behind.",
            [*labels, "reason"],
            registry=self.registry,
        )
        self.clients = Gauge(
            "heron_rtsp_clients",
            "RTSP client connections open now.",
            labels,
            registry=self.registry,
        )
