"""The control service in a thread of the test, on a real Redis and a real gRPC port, and a
publisher of the last stage's metadata as the tracker would write it."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import grpc
from heron.control.service import ControlService
from heron.core import streams
from heron.core.bus import Bus, RedisBus
from heron.core.grpc import open_channel
from heron.core.plan.settings.control import ControlSettings
from heron.core.runtime import build_context
from heron.v1.commands_pb2 import SourcesReport
from heron.v1.control_pb2 import (
    SOURCE_STATE_PLAYING,
    DetectionEvent,
    ServiceStatus,
    SubscribeRequest,
)
from heron.v1.control_pb2_grpc import DetectionsStub
from heron.v1.detection_pb2 import DetectedObject, FrameMetadata
from heron.v1.frame_pb2 import FrameRef
from heron.v1.stream_pb2 import SourceSpec
from prometheus_client import CollectorRegistry

STAGE = "tracker"


def new_pipeline() -> str:
    return f"ctl-{uuid.uuid4().hex[:8]}"


class Control:
    """A started ControlService stepping in a thread; `stop()` as SIGTERM would."""

    def __init__(self, redis_url: str, pipeline: str, **fields: Any) -> None:
        settings = ControlSettings.model_validate(
            {
                "redis_url": redis_url,
                "pipeline": pipeline,
                "stage": STAGE,
                "grpc": {"listen": "127.0.0.1:0", "grace_s": 1.0},
                "health_interval_s": 0.1,
                "readiness_timeout_s": 0.2,
                **fields,
            }
        )
        self.ctx = build_context(settings, CollectorRegistry(), exit=lambda _code: None)
        self.service = ControlService(self.ctx)
        self.service.start()
        self.port = self.service.port
        self._thread = threading.Thread(target=self._loop, name="control", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self.ctx.stopping:
            self.service.step()

    def metric(self, name: str, **labels: str) -> float:
        value = self.ctx.metrics.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    def stop(self) -> None:
        self.ctx.stop("test")
        self._thread.join(5)
        self.service.drain()
        self.service.close()


@contextmanager
def control(redis_url: str, pipeline: str, **fields: Any) -> Iterator[Control]:
    running = Control(redis_url, pipeline, **fields)
    try:
        yield running
    finally:
        running.stop()


def frame(stream_id: str, number: int, objects: Sequence[tuple[str, float]] = ()) -> FrameMetadata:
    return FrameMetadata(
        frame=FrameRef(stream_id=stream_id, frame_number=number),
        objects=[DetectedObject(label=label, confidence=c) for label, c in objects],
    )


class Metadata:
    """Publishes FrameMetadata on the pipeline's last-stage stream."""

    def __init__(self, redis_url: str, pipeline: str) -> None:
        self.bus = RedisBus.from_url(redis_url, registry=CollectorRegistry())
        self.stream = streams.metadata(STAGE, pipeline)
        self.publisher = self.bus.publisher(self.stream, FrameMetadata)

    def publish(self, numbers: range, stream_id: str = "cam-0") -> None:
        self.publisher.publish_many([frame(stream_id, n) for n in numbers])

    def close(self) -> None:
        self.bus.close()


@contextmanager
def subscription(
    port: int, request: SubscribeRequest, timeout: float | None = 30.0
) -> Iterator[Iterator[DetectionEvent]]:
    """The stream of events of one Subscribe call; cancelled when the block ends."""
    with open_channel(f"127.0.0.1:{port}") as channel:
        call = DetectionsStub(channel).Subscribe(request, timeout=timeout)
        try:
            yield call
        finally:
            call.cancel()


def refusal(port: int, request: SubscribeRequest, timeout: float = 30.0) -> grpc.RpcError:
    """The error a Subscribe call ends with before its first event."""
    with subscription(port, request, timeout) as events:
        try:
            event = next(events)
        except grpc.RpcError as e:
            return e
    raise AssertionError(f"expected an error, got an event: {event}")


def heartbeat(
    bus: Bus,
    pipeline: str,
    name: str,
    instance: str,
    *,
    age_s: float = 0,
    model_name: str = "",
    model_version: str = "",
) -> None:
    """A serving service's heartbeat, sent `age_s` ago, as heron.core.runtime.status sends it."""
    status = ServiceStatus(
        name=name,
        instance=instance,
        serving=True,
        model_name=model_name,
        model_version=model_version,
    )
    status.time.FromNanoseconds(int((time.time() - age_s) * 1e9))
    bus.publisher(streams.service_status(pipeline), ServiceStatus).publish(status)


def sources_report(bus: Bus, pipeline: str, *, age_s: float = 0) -> None:
    """Ingest's report of one playing camera, cam-0, sent `age_s` ago."""
    sent = SourcesReport(instance="ingest-0")
    sent.time.FromNanoseconds(int((time.time() - age_s) * 1e9))
    sent.sources.add(
        source=SourceSpec(stream_id="cam-0", uri="rtsp://cam/0"),
        state=SOURCE_STATE_PLAYING,
        fps=25.0,
        frames=100,
    )
    bus.publisher(streams.source_status(pipeline), SourcesReport).publish(sent)


def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Poll `condition` until it holds (AssertionError after `timeout_s`)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def take(events: Iterator[DetectionEvent], count: int) -> list[DetectionEvent]:
    return [next(events) for _ in range(count)]


def frame_numbers(events: Sequence[DetectionEvent]) -> list[int]:
    return [e.frame.frame.frame_number for e in events if e.WhichOneof("event") == "frame"]


__all__ = [
    "Control",
    "Metadata",
    "control",
    "frame",
    "grpc",
    "heartbeat",
    "sources_report",
    "subscription",
    "take",
    "wait_until",
]
