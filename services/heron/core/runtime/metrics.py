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

Latency observations carry an exemplar naming the frame they timed, `{stream, frame}` (the
source id and the frame number of its FrameRef: DeepStream's (source, frame_num) pair, which
every message about the frame carries). Prometheus keeps the latest exemplar of each bucket, so
the slow buckets name a slow frame; it reads them only over OpenMetrics (the endpoint offers it
when asked) and keeps them only with `--enable-feature=exemplar-storage`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from heron.v1.frame_pb2 import FrameRef

# One stage's work on one frame or batch: sub-millisecond (tracker) to seconds (CPU inference).
STAGE_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

# OpenMetrics: an exemplar's label names and values together hold at most 128 UTF-8 characters
# (prometheus_client raises past it, Prometheus drops the exemplar).
EXEMPLAR_MAX_CHARS = 128
# Marks a stream id shortened to fit: never part of a real one (heron.core.streams).
SHORTENED = "~"


class FrameId(Protocol):
    """What names one frame: a FrameRef, or a FrameKey before the ref exists."""

    @property
    def stream_id(self) -> str: ...

    @property
    def frame_number(self) -> int: ...


@dataclass(frozen=True, slots=True)
class FrameKey:
    """A frame's name where there is no FrameRef yet (ingest's decode)."""

    stream_id: str
    frame_number: int


def frame_exemplar(frame: FrameId) -> dict[str, str]:
    """Exemplar labels naming `frame`: `{"stream": <source id>, "frame": <frame number>}`.

    A stream id too long for the 128-character limit (ids may have 128) keeps its head and tail
    around a "~", which no real id contains: a reader sees it was shortened.
    """
    number = str(frame.frame_number)
    stream = frame.stream_id
    room = EXEMPLAR_MAX_CHARS - len("stream") - len("frame") - len(number)
    if len(stream) > room:
        head = (room - len(SHORTENED)) // 2
        tail = room - len(SHORTENED) - head
        stream = stream[:head] + SHORTENED + stream[len(stream) - tail :]
    return {"stream": stream, "frame": number}


def oldest_frame(frames: Iterable[FrameRef]) -> FrameRef | None:
    """The frame of a batch to name in its exemplar: the one captured first.

    Every frame of a batch spent the batch's time in the stage; the first captured has been in
    the pipeline longest, so it is the batch's slowest frame end to end and the one this time
    pushes furthest into capture-to-sink's tail. (A ref without a capture time reads as the
    oldest: cheaper than asking HasField of every frame, and such refs predate capture stamps.)
    """
    return min(frames, key=_captured, default=None)


def _captured(ref: FrameRef) -> tuple[int, int]:
    at = ref.capture_time
    return at.seconds, at.nanos


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

    def observe(
        self, stage: str, seconds: float, frames: int = 1, *, frame: FrameId | None = None
    ) -> None:
        """Record one finished unit of work of `frames` frames that took `seconds`; `frame`
        names the frame (of a batch: `oldest_frame`) in the observation's exemplar."""
        exemplar = None if frame is None else frame_exemplar(frame)
        self.stage_latency.labels(self.pipeline, stage).observe(seconds, exemplar)
        self.stage_frames.labels(self.pipeline, stage).inc(frames)

    @contextmanager
    def track(self, stage: str, frames: int = 1, *, frame: FrameId | None = None) -> Iterator[None]:
        """Time the block and count its frames; a block that raises counts nothing."""
        start = time.perf_counter()
        yield
        self.observe(stage, time.perf_counter() - start, frames, frame=frame)
