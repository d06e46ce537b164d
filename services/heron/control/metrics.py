"""What Detections.Subscribe counts, per control service."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class SubscribeMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.subscribers = Gauge(
            "heron_control_subscribers", "Detections subscriptions open now.", registry=registry
        )
        self.events = Counter(
            "heron_control_events_total",
            "Events sent to subscribers, by kind (frame, gap).",
            ["kind"],
            registry=registry,
        )
        self.missed = Counter(
            "heron_control_missed_frames_total",
            "Frames subscribers were told (with a Gap) they lost, by reason: trimmed (the "
            "stream no longer held them), behind (the subscriber was more than "
            "subscribe.max_behind frames behind and skipped to the newest).",
            ["reason"],
            registry=registry,
        )
        self.refused = Counter(
            "heron_control_subscriptions_refused_total",
            "Subscriptions refused because subscribe.max_subscribers were open.",
            registry=registry,
        )
        self.undecodable = Counter(
            "heron_control_undecodable_total",
            "Stream entries that did not decode as FrameMetadata (skipped).",
            registry=registry,
        )
