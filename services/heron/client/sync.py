"""The blocking client: one channel to one Heron gRPC server, every method of its services.

The control service serves Pipeline and Detections, the inference service serves Detector;
a `Client` has all three, so it works against either (a method the server at that address
does not serve raises UnimplementedError saying so).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar, cast

import grpc

from heron.client import requests
from heron.client.errors import (
    CallContext,
    ServerUnavailableError,
    from_rpc_error,
)
from heron.client.images import ChannelOrder, ImageInput
from heron.client.resume import Resume
from heron.client.settings import ClientSettings
from heron.core.grpc.channel import open_channel
from heron.v1 import control_pb2, control_pb2_grpc, detector_pb2, detector_pb2_grpc, stream_pb2

T = TypeVar("T")
ReconnectHook = Callable[[str, float], None]
"""Called before a subscription calls again: (why it dropped, seconds until it calls)."""


class Client:
    """A connection to a Heron gRPC server; `Client("127.0.0.1:50051")` or with settings."""

    def __init__(self, settings: ClientSettings | str) -> None:
        if isinstance(settings, str):
            settings = ClientSettings(target=settings)
        self.settings = settings
        self._channel = open_channel(
            settings.target,
            tls=settings.tls,
            token=settings.token_value(),
            max_message_mb=settings.max_message_mb,
        )
        self._pipeline = control_pb2_grpc.PipelineStub(self._channel)
        self._detections = control_pb2_grpc.DetectionsStub(self._channel)
        self._detector = detector_pb2_grpc.DetectorStub(self._channel)

    def close(self) -> None:
        """Cancel the calls in flight and close the channel."""
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- Pipeline ------------------------------------------------------------------------

    def add_source(
        self, source: str | stream_pb2.SourceSpec, *, stream_id: str = ""
    ) -> control_pb2.SourceStatus:
        """Add a source (a URI, or a whole SourceSpec) to the running pipeline."""
        request = requests.add_source_request(source, stream_id=stream_id)
        return self._unary(
            "Pipeline/AddSource", self._pipeline.AddSource, request, control_pb2.SourceStatus
        )

    def remove_source(self, stream_id: str) -> control_pb2.RemoveSourceResponse:
        request = control_pb2.RemoveSourceRequest(stream_id=stream_id)
        return self._unary(
            "Pipeline/RemoveSource",
            self._pipeline.RemoveSource,
            request,
            control_pb2.RemoveSourceResponse,
        )

    def get_source(self, stream_id: str) -> control_pb2.SourceStatus:
        request = control_pb2.GetSourceRequest(stream_id=stream_id)
        return self._unary(
            "Pipeline/GetSource", self._pipeline.GetSource, request, control_pb2.SourceStatus
        )

    def list_sources(self) -> list[control_pb2.SourceStatus]:
        request = control_pb2.ListSourcesRequest()
        reply = self._unary(
            "Pipeline/ListSources",
            self._pipeline.ListSources,
            request,
            control_pb2.ListSourcesResponse,
        )
        return list(reply.sources)

    def get_status(self) -> control_pb2.PipelineStatus:
        request = control_pb2.GetStatusRequest()
        return self._unary(
            "Pipeline/GetStatus", self._pipeline.GetStatus, request, control_pb2.PipelineStatus
        )

    def watch_status(self, *, interval_s: float = 0.0) -> Iterator[control_pb2.PipelineStatus]:
        """The pipeline's status every `interval_s` (0: the server's default, 1 s)."""
        request = control_pb2.WatchStatusRequest(interval_seconds=interval_s)
        return self._stream("Pipeline/WatchStatus", self._pipeline.WatchStatus(request))

    def set_parameters(
        self, *, thresholds: Mapping[int, float] | None = None, interval: int | None = None
    ) -> None:
        """Per-class pre-cluster thresholds (class id -> threshold) and/or nvinfer's interval."""
        request = requests.set_parameters_request(thresholds or {}, interval)
        self._unary(
            "Pipeline/SetParameters",
            self._pipeline.SetParameters,
            request,
            control_pb2.SetParametersResponse,
        )

    def set_model_versions(
        self,
        *,
        default_version: str = "",
        stream_versions: Mapping[str, str] | None = None,
        requested_by: str = "",
        deadline_s: float | None = requests.MODEL_LOAD_DEADLINE_S,
    ) -> control_pb2.ModelVersions:
        """Route streams to versions of the model: `stream_versions` (stream id -> version)
        run their version, every other stream `default_version` ("" = the config's). Replaces
        the routing in force; returns it once every inference instance has loaded and switched
        to it. Loading takes time: the deadline is `deadline_s`, 120 s (None: the settings'
        `deadline_s`)."""
        request = requests.set_model_versions_request(
            default_version, stream_versions or {}, requested_by
        )
        return self._unary(
            "Pipeline/SetModelVersions",
            self._pipeline.SetModelVersions,
            request,
            control_pb2.ModelVersions,
            deadline_s,
        )

    def get_model_versions(self) -> control_pb2.ModelVersions:
        """The routing in force: which version each stream runs and which are loaded."""
        request = control_pb2.GetModelVersionsRequest()
        return self._unary(
            "Pipeline/GetModelVersions",
            self._pipeline.GetModelVersions,
            request,
            control_pb2.ModelVersions,
        )

    # -- Detections ----------------------------------------------------------------------

    def subscribe(
        self,
        *,
        stream_ids: Iterable[str] = (),
        classes: Iterable[str] = (),
        min_confidence: float = 0.0,
        after: str = "",
        from_oldest: bool = False,
        on_reconnect: ReconnectHook | None = None,
    ) -> Subscription:
        """Detections as they happen (after `after`, a position of an earlier event, if given).

        The subscription calls again by itself when its connection drops, continuing after
        the last event it delivered; a Gap event says what the server no longer held.
        """
        request = requests.subscribe_request(
            stream_ids=stream_ids,
            classes=classes,
            min_confidence=min_confidence,
            after=after,
            from_oldest=from_oldest,
        )
        return Subscription(
            self._detections.Subscribe,
            Resume(request, self.settings.reconnect_timeout_s),
            context=self._context("Detections/Subscribe", None),
            on_reconnect=on_reconnect,
        )

    # -- Detector ------------------------------------------------------------------------

    def detect(
        self,
        images: Sequence[ImageInput],
        *,
        min_confidence: float = 0.0,
        order: ChannelOrder = "bgr",
        deadline_s: float | None = None,
    ) -> detector_pb2.DetectResponse:
        """Objects in each image (paths, JPEG/PNG bytes, uint8 arrays in `order`)."""
        request = requests.detect_request(images, min_confidence=min_confidence, order=order)
        return self._unary(
            "Detector/Detect",
            self._detector.Detect,
            request,
            detector_pb2.DetectResponse,
            deadline_s,
        )

    def detect_stream(
        self,
        batches: Iterable[Sequence[ImageInput]],
        *,
        min_confidence: float = 0.0,
        order: ChannelOrder = "bgr",
    ) -> Iterator[detector_pb2.DetectResponse]:
        """One DetectResponse per batch of images, over one stream."""
        feed = requests.DetectFeed(min_confidence=min_confidence, order=order)
        call = self._detector.DetectStream(feed.requests(batches))
        return self._stream("Detector/DetectStream", call, feed)

    def get_model(self) -> detector_pb2.ModelInfo:
        request = detector_pb2.GetModelRequest()
        return self._unary(
            "Detector/GetModel", self._detector.GetModel, request, detector_pb2.ModelInfo
        )

    # -- calls ---------------------------------------------------------------------------

    def _context(self, method: str, deadline_s: float | None) -> CallContext:
        return CallContext(
            target=self.settings.target,
            method=f"heron.v1.{method}",
            token_sent=self.settings.token is not None,
            deadline_s=deadline_s,
        )

    def _unary(
        self,
        method: str,
        call: Callable[..., Any],
        request: Any,
        reply: type[T],
        deadline_s: float | None = None,
    ) -> T:
        """The reply of a unary call (`reply` names its type; the stubs leave it untyped)."""
        deadline = deadline_s if deadline_s is not None else self.settings.deadline_s
        try:
            return cast(T, call(request, timeout=deadline))
        except grpc.RpcError as e:
            raise from_rpc_error(e, self._context(method, deadline)) from None

    def _stream(
        self, method: str, responses: Iterator[T], feed: requests.DetectFeed | None = None
    ) -> Iterator[T]:
        try:
            yield from responses
        except grpc.RpcError as e:
            if feed is not None and feed.error is not None:
                raise feed.error from None
            raise from_rpc_error(e, self._context(method, None)) from None
        finally:
            cancel = getattr(responses, "cancel", None)
            if cancel is not None:
                cancel()  # a caller that stops early must not leave the call open


class Subscription(Iterator[control_pb2.DetectionEvent]):
    """The events of a subscription, across reconnections; `position` is where to resume."""

    def __init__(
        self,
        open_call: Callable[[control_pb2.SubscribeRequest], Any],
        resume: Resume,
        *,
        context: CallContext,
        on_reconnect: ReconnectHook | None,
    ) -> None:
        self._open = open_call
        self._resume = resume
        self._context = context
        self._on_reconnect = on_reconnect
        self._stopped = threading.Event()
        self._call: Any = None
        self._events = self._run()

    @property
    def position(self) -> str:
        """The position of the last event delivered ("" before the first): pass it as
        `after` to a later subscription to continue from here."""
        return self._resume.position

    @property
    def reconnects(self) -> int:
        return self._resume.reconnects

    def __next__(self) -> control_pb2.DetectionEvent:
        return next(self._events)

    def cancel(self) -> None:
        """End the subscription (from any thread): the iteration stops."""
        self._stopped.set()
        call = self._call
        if call is not None:
            call.cancel()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cancel()
        self._events.close()

    def _run(self) -> Generator[control_pb2.DetectionEvent, None, None]:
        try:
            while not self._stopped.is_set():
                opened = time.monotonic()
                self._call = self._open(self._resume.next_request())
                if self._stopped.is_set():  # cancel() ran between the check and the call
                    return
                why = yield from self._drain(opened)
                if self._stopped.is_set():
                    return
                self._wait_to_call_again(opened, why)
        finally:
            if self._call is not None:
                self._call.cancel()

    def _drain(self, opened: float) -> Generator[control_pb2.DetectionEvent, None, str]:
        """The call's events; returns why it ended when calling again may help."""
        try:
            for event in self._call:
                self._resume.delivered(event)
                yield event
        except grpc.RpcError as e:
            if self._stopped.is_set():
                return "cancelled"
            failure = from_rpc_error(e, self._context)
            if not self._resume.may_resume(e.code(), opened, time.monotonic()):
                raise failure from None
            return str(failure)
        return "the server ended the stream"

    def _wait_to_call_again(self, opened: float, why: str) -> None:
        delay = self._resume.dropped(opened, time.monotonic())
        if delay is None:
            raise ServerUnavailableError(
                f"the subscription to {self._context.target} dropped and calling again failed "
                f"for {self._resume.reconnect_timeout_s:g} s: {why}",
                code="UNAVAILABLE",
            )
        if self._on_reconnect is not None:
            self._on_reconnect(why, delay)
        self._stopped.wait(delay)
