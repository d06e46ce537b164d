"""Small fakes of the three gRPC services, served by the kit's real server, for the client's
and the CLI's tests: what matters here is how the client behaves, not what the servers do.

FakeDetections keeps a log of frame events (positions `N-0:N`, N counting from 1) of which the
oldest may be trimmed, as the metadata stream's retention does: a subscription from `after`
gets what follows it (a Gap first when some of that was trimmed), then waits for more.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import grpc
from heron.core.grpc import (
    GrpcServerSettings,
    InvalidArgumentError,
    NotFoundError,
    TlsSettings,
    UnavailableError,
)
from heron.core.grpc.server import RunningServer, ServiceBinding, start_server
from heron.v1 import (
    control_pb2,
    control_pb2_grpc,
    detection_pb2,
    detector_pb2,
    detector_pb2_grpc,
    frame_pb2,
    stream_pb2,
)
from pydantic import SecretStr

MODEL = detector_pb2.ModelInfo(
    name="facemask",
    version="3",
    precision="fp32",
    backend="onnxruntime",
    input_width=960,
    input_height=544,
    input_channels=3,
    max_batch_size=8,
    labels=["Mask", "No-Mask"],
)


def position(number: int) -> str:
    return f"{number}-0:{number}"


def frame_event(number: int, stream: str = "cam-1") -> control_pb2.DetectionEvent:
    """Frame `number` (from 1) of `stream` with two objects: a Mask and a No-Mask."""
    ref = frame_pb2.FrameRef(stream_id=stream, frame_number=number, width=1920, height=1080)
    ref.capture_time.FromSeconds(1_765_000_000 + number)
    objects = [
        detection_pb2.DetectedObject(
            bbox=detection_pb2.BoundingBox(left=10.4, top=20, width=30, height=40.6),
            class_id=0,
            label="Mask",
            confidence=0.91,
            tracker_id=7,
        ),
        detection_pb2.DetectedObject(
            bbox=detection_pb2.BoundingBox(left=100, top=200, width=50, height=60),
            class_id=1,
            label="No-Mask",
            confidence=0.42,
        ),
    ]
    meta = detection_pb2.FrameMetadata(frame=ref, objects=objects, inferred=True)
    return control_pb2.DetectionEvent(position=position(number), frame=meta)


class FakeDetections(control_pb2_grpc.DetectionsServicer):
    def __init__(self) -> None:
        self.log: list[control_pb2.DetectionEvent] = []
        self.oldest = 1  # number of the oldest frame still held
        self.requests: list[control_pb2.SubscribeRequest] = []
        self._changed = threading.Condition()

    def publish(self, count: int, stream: str = "cam-1") -> None:
        with self._changed:
            for _ in range(count):
                self.log.append(frame_event(len(self.log) + 1, stream))
            self._changed.notify_all()

    def trim(self, oldest: int) -> None:
        """Forget the frames before number `oldest`, as retention does."""
        self.oldest = oldest

    def Subscribe(  # noqa: N802
        self, request: control_pb2.SubscribeRequest, context: grpc.ServicerContext
    ) -> Iterator[control_pb2.DetectionEvent]:
        self.requests.append(request)
        number = self._first(request)  # the number of the next frame to send
        if number < self.oldest:
            gap = control_pb2.Gap(
                after=request.after, resumed_at=position(self.oldest), missed=self.oldest - number
            )
            yield control_pb2.DetectionEvent(position=position(self.oldest - 1), gap=gap)
            number = self.oldest
        while context.is_active():
            with self._changed:
                if number > len(self.log):
                    self._changed.wait(0.05)
                    continue
                event = self.log[number - 1]
            number += 1
            if _wanted(event, request):
                yield _filtered(event, request)

    def _first(self, request: control_pb2.SubscribeRequest) -> int:
        if request.after:
            _, _, count = request.after.partition(":")
            if not count.isdigit():
                raise InvalidArgumentError("after", f"expected a position, got {request.after!r}")
            return int(count) + 1
        return self.oldest if request.from_oldest else len(self.log) + 1


def _wanted(event: control_pb2.DetectionEvent, request: control_pb2.SubscribeRequest) -> bool:
    return not request.stream_ids or event.frame.frame.stream_id in request.stream_ids


def _filtered(
    event: control_pb2.DetectionEvent, request: control_pb2.SubscribeRequest
) -> control_pb2.DetectionEvent:
    out = control_pb2.DetectionEvent()
    out.CopyFrom(event)
    kept = [
        o
        for o in event.frame.objects
        if (not request.classes or o.label in request.classes)
        and o.confidence >= request.min_confidence
    ]
    del out.frame.objects[:]
    out.frame.objects.extend(kept)
    return out


class FakeDetector(detector_pb2_grpc.DetectorServicer):
    def __init__(self) -> None:
        self.requests: list[detector_pb2.DetectRequest] = []

    def Detect(  # noqa: N802
        self, request: detector_pb2.DetectRequest, context: grpc.ServicerContext
    ) -> detector_pb2.DetectResponse:
        self.requests.append(request)
        if not request.images:
            raise InvalidArgumentError("images", "expected at least one image, got none")
        return detector_pb2.DetectResponse(
            results=[_detections(image, request.min_confidence) for image in request.images],
            model_name=MODEL.name,
            model_version=MODEL.version,
        )

    def DetectStream(  # noqa: N802
        self, requests: Iterator[detector_pb2.DetectRequest], context: grpc.ServicerContext
    ) -> Iterator[detector_pb2.DetectResponse]:
        for request in requests:
            yield self.Detect(request, context)

    def GetModel(  # noqa: N802
        self, request: detector_pb2.GetModelRequest, context: grpc.ServicerContext
    ) -> detector_pb2.ModelInfo:
        return MODEL


def _detections(image: detector_pb2.Image, min_confidence: float) -> detector_pb2.ImageDetections:
    if image.HasField("raw"):
        width, height = image.raw.width, image.raw.height
    elif image.encoded.startswith(b"\x89PNG"):  # the size is in the IHDR chunk
        width = int.from_bytes(image.encoded[16:20], "big")
        height = int.from_bytes(image.encoded[20:24], "big")
    else:
        width = height = 0
    objects = [o for o in frame_event(1).frame.objects if o.confidence >= min_confidence]
    return detector_pb2.ImageDetections(id=image.id, width=width, height=height, objects=objects)


class FakePipeline(control_pb2_grpc.PipelineServicer):
    """Sources in a dict. GetSource answers some ids with a failure, for the error tests:
    `abort:CODE` aborts with that status, `crash` raises, `slow` sleeps 2 s, `down` and
    `missing` raise the kit's UnavailableError and NotFoundError, `bad` InvalidArgumentError."""

    def __init__(self) -> None:
        self.sources: dict[str, control_pb2.SourceStatus] = {}
        self.parameters: list[control_pb2.SetParametersRequest] = []
        self.versions: list[control_pb2.SetModelVersionsRequest] = []
        self.routing = control_pb2.ModelVersions(
            model_name="facemask", config_version="3", default_version="3", loaded=["3"]
        )

    def AddSource(  # noqa: N802
        self, request: control_pb2.AddSourceRequest, context: grpc.ServicerContext
    ) -> control_pb2.SourceStatus:
        spec = stream_pb2.SourceSpec()
        spec.CopyFrom(request.source)
        if not spec.uri:
            raise InvalidArgumentError("source.uri", "required: a file://, rtsp:// or http URI")
        spec.stream_id = spec.stream_id or f"source-{len(self.sources)}"
        if spec.stream_id in self.sources:
            context.abort(grpc.StatusCode.ALREADY_EXISTS, f"stream {spec.stream_id!r} exists")
        status = control_pb2.SourceStatus(
            source=spec, state=control_pb2.SOURCE_STATE_CONNECTING, fps=0.0
        )
        self.sources[spec.stream_id] = status
        return status

    def RemoveSource(  # noqa: N802
        self, request: control_pb2.RemoveSourceRequest, context: grpc.ServicerContext
    ) -> control_pb2.RemoveSourceResponse:
        if request.stream_id not in self.sources:
            raise NotFoundError(f"no stream {request.stream_id!r}")
        del self.sources[request.stream_id]
        return control_pb2.RemoveSourceResponse(frames=250)

    def GetSource(  # noqa: N802
        self, request: control_pb2.GetSourceRequest, context: grpc.ServicerContext
    ) -> control_pb2.SourceStatus:
        stream_id = request.stream_id
        if stream_id.startswith("abort:"):
            code = grpc.StatusCode[stream_id.removeprefix("abort:")]
            context.abort(code, f"{code.name} from the fake")
        if stream_id == "crash":
            raise RuntimeError("a bug with a traceback the client must never see")
        if stream_id == "slow":
            time.sleep(2)
        if stream_id == "down":
            raise UnavailableError("the bus does not answer")
        if stream_id == "bad":
            raise InvalidArgumentError("stream_id", "expected letters, digits, '-' or '_'")
        if stream_id not in self.sources:
            raise NotFoundError(f"no stream {stream_id!r}")
        return self.sources[stream_id]

    def ListSources(  # noqa: N802
        self, request: control_pb2.ListSourcesRequest, context: grpc.ServicerContext
    ) -> control_pb2.ListSourcesResponse:
        return control_pb2.ListSourcesResponse(sources=list(self.sources.values()))

    def GetStatus(  # noqa: N802
        self, request: control_pb2.GetStatusRequest, context: grpc.ServicerContext
    ) -> control_pb2.PipelineStatus:
        status = control_pb2.PipelineStatus(
            pipeline="face-mask",
            services=[
                control_pb2.ServiceStatus(
                    name="inference",
                    instance="inference-0",
                    serving=True,
                    model_name="facemask",
                    model_version="3",
                ),
                control_pb2.ServiceStatus(
                    name="tracker", instance="tracker-0", serving=False, detail="redis is down"
                ),
            ],
            sources=list(self.sources.values()),
            rates=[control_pb2.StreamRate(stream_id="cam-1", fps=29.97)],
        )
        status.time.FromSeconds(1_765_000_000)
        return status

    def WatchStatus(  # noqa: N802
        self, request: control_pb2.WatchStatusRequest, context: grpc.ServicerContext
    ) -> Iterator[control_pb2.PipelineStatus]:
        for _ in range(3):  # then it ends, so a command watching it ends too
            yield self.GetStatus(control_pb2.GetStatusRequest(), context)
            time.sleep(min(request.interval_seconds or 1.0, 0.2))

    def SetParameters(  # noqa: N802
        self, request: control_pb2.SetParametersRequest, context: grpc.ServicerContext
    ) -> control_pb2.SetParametersResponse:
        self.parameters.append(request)
        return control_pb2.SetParametersResponse()

    def SetModelVersions(  # noqa: N802
        self, request: control_pb2.SetModelVersionsRequest, context: grpc.ServicerContext
    ) -> control_pb2.ModelVersions:
        """Knows versions 3 (the config's) and 4 of `facemask`."""
        named = {request.default_version or "3", *request.stream_versions.values()}
        if named - {"3", "4"}:
            raise NotFoundError(f"version {max(named - {'3', '4'})}: no such version")
        self.versions.append(request)
        self.routing = control_pb2.ModelVersions(
            model_name="facemask",
            config_version="3",
            default_version=request.default_version,
            stream_versions=request.stream_versions,
            loaded=sorted(named | {"3"}),
            requested_by=request.requested_by,
        )
        self.routing.time.FromSeconds(1_765_000_000)
        return self.routing

    def GetModelVersions(  # noqa: N802
        self, request: control_pb2.GetModelVersionsRequest, context: grpc.ServicerContext
    ) -> control_pb2.ModelVersions:
        return self.routing


@dataclass
class Fakes:
    pipeline: FakePipeline = field(default_factory=FakePipeline)
    detections: FakeDetections = field(default_factory=FakeDetections)
    detector: FakeDetector = field(default_factory=FakeDetector)

    def bindings(self) -> list[ServiceBinding]:
        return [
            ServiceBinding(
                "heron.v1.Pipeline",
                lambda s: control_pb2_grpc.add_PipelineServicer_to_server(self.pipeline, s),
            ),
            ServiceBinding(
                "heron.v1.Detections",
                lambda s: control_pb2_grpc.add_DetectionsServicer_to_server(self.detections, s),
            ),
            ServiceBinding(
                "heron.v1.Detector",
                lambda s: detector_pb2_grpc.add_DetectorServicer_to_server(self.detector, s),
            ),
        ]


def start(
    fakes: Fakes,
    *,
    port: int = 0,
    tls: TlsSettings | None = None,
    token: str | None = None,
    max_receive_message_mb: float = 16.0,
) -> RunningServer:
    """The kit's server on 127.0.0.1:`port` (0: a free one) serving the fakes; stops at once."""
    settings = GrpcServerSettings(
        listen=f"127.0.0.1:{port}",
        tls=tls,
        token=SecretStr(token) if token is not None else None,
        max_receive_message_mb=max_receive_message_mb,
        grace_s=0,
    )
    return start_server(settings, fakes.bindings())


@contextmanager
def serving(
    fakes: Fakes, *, tls: TlsSettings | None = None, token: str | None = None
) -> Iterator[RunningServer]:
    server = start(fakes, tls=tls, token=token)
    try:
        yield server
    finally:
        server.stop()
