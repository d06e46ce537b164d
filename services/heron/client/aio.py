"""The asyncio client: the same methods as `Client`, awaited (streams are async iterators)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from types import TracebackType
from typing import Any, TypeVar, cast

import grpc
import grpc.aio

from heron.client import requests
from heron.client.errors import CallContext, ServerUnavailableError, from_rpc_error
from heron.client.images import ChannelOrder, ImageInput
from heron.client.resume import Resume
from heron.client.settings import ClientSettings
from heron.client.sync import ReconnectHook
from heron.core.grpc.channel import open_aio_channel
from heron.v1 import control_pb2, control_pb2_grpc, detector_pb2, detector_pb2_grpc, stream_pb2

T = TypeVar("T")


class AsyncClient:
    """`Client` for asyncio code: `async with AsyncClient("127.0.0.1:50051") as client:`."""

    def __init__(self, settings: ClientSettings | str) -> None:
        if isinstance(settings, str):
            settings = ClientSettings(target=settings)
        self.settings = settings
        self._channel = open_aio_channel(
            settings.target,
            tls=settings.tls,
            token=settings.token_value(),
            max_message_mb=settings.max_message_mb,
        )
        self._pipeline = control_pb2_grpc.PipelineStub(self._channel)
        self._detections = control_pb2_grpc.DetectionsStub(self._channel)
        self._detector = detector_pb2_grpc.DetectorStub(self._channel)

    async def close(self) -> None:
        """Cancel the calls in flight and close the channel."""
        await self._channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- Pipeline ------------------------------------------------------------------------

    async def add_source(
        self, source: str | stream_pb2.SourceSpec, *, stream_id: str = ""
    ) -> control_pb2.SourceStatus:
        """Add a source (a URI, or a whole SourceSpec) to the running pipeline."""
        request = requests.add_source_request(source, stream_id=stream_id)
        return await self._unary(
            "Pipeline/AddSource", self._pipeline.AddSource, request, control_pb2.SourceStatus
        )

    async def remove_source(self, stream_id: str) -> control_pb2.RemoveSourceResponse:
        request = control_pb2.RemoveSourceRequest(stream_id=stream_id)
        return await self._unary(
            "Pipeline/RemoveSource",
            self._pipeline.RemoveSource,
            request,
            control_pb2.RemoveSourceResponse,
        )

    async def get_source(self, stream_id: str) -> control_pb2.SourceStatus:
        request = control_pb2.GetSourceRequest(stream_id=stream_id)
        return await self._unary(
            "Pipeline/GetSource", self._pipeline.GetSource, request, control_pb2.SourceStatus
        )

    async def list_sources(self) -> list[control_pb2.SourceStatus]:
        request = control_pb2.ListSourcesRequest()
        reply = await self._unary(
            "Pipeline/ListSources",
            self._pipeline.ListSources,
            request,
            control_pb2.ListSourcesResponse,
        )
        return list(reply.sources)

    async def get_status(self) -> control_pb2.PipelineStatus:
        request = control_pb2.GetStatusRequest()
        return await self._unary(
            "Pipeline/GetStatus", self._pipeline.GetStatus, request, control_pb2.PipelineStatus
        )

    def watch_status(self, *, interval_s: float = 0.0) -> AsyncIterator[control_pb2.PipelineStatus]:
        """The pipeline's status every `interval_s` (0: the server's default, 1 s)."""
        request = control_pb2.WatchStatusRequest(interval_seconds=interval_s)
        return self._stream("Pipeline/WatchStatus", self._pipeline.WatchStatus(request))

    async def set_parameters(
        self, *, thresholds: Mapping[int, float] | None = None, interval: int | None = None
    ) -> None:
        """Per-class pre-cluster thresholds (class id -> threshold) and/or nvinfer's interval."""
        request = requests.set_parameters_request(thresholds or {}, interval)
        await self._unary(
            "Pipeline/SetParameters",
            self._pipeline.SetParameters,
            request,
            control_pb2.SetParametersResponse,
        )

    async def set_model_versions(
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
        return await self._unary(
            "Pipeline/SetModelVersions",
            self._pipeline.SetModelVersions,
            request,
            control_pb2.ModelVersions,
            deadline_s,
        )

    async def get_model_versions(self) -> control_pb2.ModelVersions:
        """The routing in force: which version each stream runs and which are loaded."""
        request = control_pb2.GetModelVersionsRequest()
        return await self._unary(
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
    ) -> AsyncSubscription:
        """As `Client.subscribe`: resumes by itself after a dropped connection."""
        request = requests.subscribe_request(
            stream_ids=stream_ids,
            classes=classes,
            min_confidence=min_confidence,
            after=after,
            from_oldest=from_oldest,
        )
        return AsyncSubscription(
            self._detections.Subscribe,
            Resume(request, self.settings.reconnect_timeout_s),
            context=self._context("Detections/Subscribe", None),
            on_reconnect=on_reconnect,
        )

    # -- Detector ------------------------------------------------------------------------

    async def detect(
        self,
        images: Sequence[ImageInput],
        *,
        min_confidence: float = 0.0,
        order: ChannelOrder = "bgr",
        deadline_s: float | None = None,
    ) -> detector_pb2.DetectResponse:
        """Objects in each image (paths, JPEG/PNG bytes, uint8 arrays in `order`)."""
        request = requests.detect_request(images, min_confidence=min_confidence, order=order)
        return await self._unary(
            "Detector/Detect",
            self._detector.Detect,
            request,
            detector_pb2.DetectResponse,
            deadline_s,
        )

    def detect_stream(
        self,
        batches: Iterable[Sequence[ImageInput]] | AsyncIterable[Sequence[ImageInput]],
        *,
        min_confidence: float = 0.0,
        order: ChannelOrder = "bgr",
    ) -> AsyncIterator[detector_pb2.DetectResponse]:
        """One DetectResponse per batch of images, over one stream."""
        feed = requests.DetectFeed(min_confidence=min_confidence, order=order)
        call = self._detector.DetectStream(feed.async_requests(batches))
        return self._stream("Detector/DetectStream", call, feed)

    async def get_model(self) -> detector_pb2.ModelInfo:
        request = detector_pb2.GetModelRequest()
        return await self._unary(
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

    async def _unary(
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
            return cast(T, await call(request, timeout=deadline))
        except grpc.RpcError as e:
            raise from_rpc_error(e, self._context(method, deadline)) from None

    async def _stream(
        self, method: str, call: Any, feed: requests.DetectFeed | None = None
    ) -> AsyncIterator[Any]:
        try:
            async for response in call:
                yield response
        except grpc.RpcError as e:
            if feed is not None and feed.error is not None:
                raise feed.error from None
            raise from_rpc_error(e, self._context(method, None)) from None
        except asyncio.CancelledError:
            if feed is not None and feed.error is not None:
                raise feed.error from None  # gRPC cancels a call whose requests failed
            raise
        finally:
            call.cancel()  # a caller that stops early must not leave the call open


class AsyncSubscription(AsyncIterator[control_pb2.DetectionEvent]):
    """`Subscription` for asyncio: `async for event in subscription`."""

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
        self._stopped = asyncio.Event()
        self._call: Any = None
        self._events = self._run()

    @property
    def position(self) -> str:
        """The position of the last event delivered: pass it as `after` to continue."""
        return self._resume.position

    @property
    def reconnects(self) -> int:
        return self._resume.reconnects

    async def __anext__(self) -> control_pb2.DetectionEvent:
        return await self._events.__anext__()

    def cancel(self) -> None:
        """End the subscription: the iteration stops."""
        self._stopped.set()
        if self._call is not None:
            self._call.cancel()

    async def __aenter__(self) -> AsyncSubscription:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cancel()
        await self._events.aclose()

    async def _run(self) -> AsyncGenerator[control_pb2.DetectionEvent, None]:
        try:
            while not self._stopped.is_set():
                opened = time.monotonic()
                self._call = self._open(self._resume.next_request())
                why = "the server ended the stream"
                try:
                    async for event in self._call:
                        self._resume.delivered(event)
                        yield event
                except asyncio.CancelledError:
                    if self._stopped.is_set():  # our cancel(): grpc.aio raises this for it
                        return
                    raise
                except grpc.RpcError as e:
                    if self._stopped.is_set():
                        return
                    failure = from_rpc_error(e, self._context)
                    if not self._resume.may_resume(e.code(), opened, time.monotonic()):
                        raise failure from None
                    why = str(failure)
                if self._stopped.is_set():
                    return
                await self._wait_to_call_again(opened, why)
        finally:
            if self._call is not None:
                self._call.cancel()

    async def _wait_to_call_again(self, opened: float, why: str) -> None:
        delay = self._resume.dropped(opened, time.monotonic())
        if delay is None:
            raise ServerUnavailableError(
                f"the subscription to {self._context.target} dropped and calling again failed "
                f"for {self._resume.reconnect_timeout_s:g} s: {why}",
                code="UNAVAILABLE",
            )
        if self._on_reconnect is not None:
            self._on_reconnect(why, delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), delay)
