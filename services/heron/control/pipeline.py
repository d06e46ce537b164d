"""heron.v1.Pipeline: sources, parameters and model versions of the running pipeline, and its
status.

Changes travel as Commands over the bus to the stage that owns them (heron.core.commands):
AddSource and RemoveSource to ingest, SetParameters and SetModelVersions to every inference
instance. A call
returns what the stage answered: its refusal with the same code and field, or UNAVAILABLE
when no stage answered within `command_timeout_s` (or the call's deadline, if sooner) — then
nothing was changed, since a stage never applies a command its caller has given up on.

Reads (GetSource, ListSources, GetStatus, WatchStatus, GetModelVersions) come from what the
stages report: the StatusBoard's heartbeats and rates, ingest's newest SourcesReport and
inference's newest stored ModelVersions.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import grpc

from heron.control.source_uris import check_added_uri
from heron.control.status_board import StatusBoard
from heron.core.commands import CommandSender, ReplyCode
from heron.core.grpc import InvalidArgumentError, NotFoundError, UnavailableError
from heron.core.model_versions import VersionRequestError, check_request
from heron.core.plan.settings.control import PipelineApiSettings
from heron.v1 import control_pb2_grpc
from heron.v1.commands_pb2 import Command, CommandReply, SourcesReport
from heron.v1.control_pb2 import (
    AddSourceRequest,
    GetModelVersionsRequest,
    GetSourceRequest,
    GetStatusRequest,
    ListSourcesRequest,
    ListSourcesResponse,
    ModelVersions,
    PipelineStatus,
    RemoveSourceRequest,
    RemoveSourceResponse,
    SetModelVersionsRequest,
    SetParametersRequest,
    SetParametersResponse,
    SourceStatus,
    WatchStatusRequest,
)
from heron.v1.stream_pb2 import SourceSpec

log = logging.getLogger(__name__)

SERVICE = "heron.v1.Pipeline"
MIN_WATCH_INTERVAL_S = 0.1
MAX_WATCH_INTERVAL_S = 60.0
_CODES = {code.value[0]: code for code in grpc.StatusCode}


class PipelineServicer(control_pb2_grpc.PipelineServicer):
    def __init__(
        self,
        sender: CommandSender,
        board: StatusBoard,
        settings: PipelineApiSettings,
        stopping: threading.Event,
    ) -> None:
        self._sender = sender
        self._board = board
        self._settings = settings
        self._stopping = stopping

    # --- changes ------------------------------------------------------------------------

    def AddSource(  # noqa: N802 (the RPC's name)
        self, request: AddSourceRequest, context: grpc.ServicerContext
    ) -> SourceStatus:
        if not request.source.uri.strip():
            raise InvalidArgumentError("source.uri", "required (file://, rtsp://, /dev/videoN)")
        # A client must not make ingest read any file the pod can read (source_uris).
        source = SourceSpec()
        source.CopyFrom(request.source)
        source.uri = check_added_uri(source.uri, self._settings.media_roots)
        answer = self._one(Command(add_source=source), "ingest", context)
        log.info("source %s added: %s", answer.source.source.stream_id, request.source.uri)
        return answer.source

    def RemoveSource(  # noqa: N802
        self, request: RemoveSourceRequest, context: grpc.ServicerContext
    ) -> RemoveSourceResponse:
        if not request.stream_id:
            raise InvalidArgumentError("stream_id", "required")
        answer = self._one(Command(remove_source=request.stream_id), "ingest", context)
        log.info("source %s removed after %d frames", request.stream_id, answer.source.frames)
        return RemoveSourceResponse(frames=answer.source.frames)

    def SetParameters(  # noqa: N802
        self, request: SetParametersRequest, context: grpc.ServicerContext
    ) -> SetParametersResponse:
        _check_parameters(request)
        command = Command(set_parameters=request)
        replies = self._every_inference(command, "parameters", self._timeout(context), context)
        log.info("parameters set on %d inference instance(s)", len(replies))
        return SetParametersResponse()

    def SetModelVersions(  # noqa: N802
        self, request: SetModelVersionsRequest, context: grpc.ServicerContext
    ) -> ModelVersions:
        try:
            check_request(request)
        except VersionRequestError as e:
            raise InvalidArgumentError(e.field, str(e).removeprefix(f"{e.field}: ")) from None
        command = Command(set_model_versions=request)
        timeout = self._timeout(context, self._settings.model_load_timeout_s)
        replies = self._every_inference(command, "model versions", timeout, context)
        log.info(
            "model versions set on %d inference instance(s) by %s",
            len(replies),
            request.requested_by or "-",
        )
        return replies[0].model_versions

    def GetModelVersions(  # noqa: N802
        self, request: GetModelVersionsRequest, context: grpc.ServicerContext
    ) -> ModelVersions:
        stored = self._board.model_versions()
        if stored is not None:
            return stored
        # Never set: every instance runs the config's model, as its heartbeat says.
        for service in self._board.services():
            if service.name == "inference" and service.serving and service.model_name:
                version = service.model_version
                return ModelVersions(
                    model_name=service.model_name,
                    config_version=version,
                    default_version=version,
                    loaded=[version],
                    time=service.time,
                )
        raise UnavailableError(
            f"no model versions were set in pipeline {self._board.settings.pipeline!r} and no "
            "inference service serves it now (is the pipeline running?)"
        )

    # --- reads --------------------------------------------------------------------------

    def GetSource(  # noqa: N802
        self, request: GetSourceRequest, context: grpc.ServicerContext
    ) -> SourceStatus:
        if not request.stream_id:
            raise InvalidArgumentError("stream_id", "required")
        for source in self._report().sources:
            if source.source.stream_id == request.stream_id:
                return source
        raise NotFoundError(f"stream_id: no source {request.stream_id!r} in this pipeline")

    def ListSources(  # noqa: N802
        self, request: ListSourcesRequest, context: grpc.ServicerContext
    ) -> ListSourcesResponse:
        return ListSourcesResponse(sources=self._report().sources)

    def GetStatus(  # noqa: N802
        self, request: GetStatusRequest, context: grpc.ServicerContext
    ) -> PipelineStatus:
        return self.status()

    def WatchStatus(  # noqa: N802
        self, request: WatchStatusRequest, context: grpc.ServicerContext
    ) -> Iterator[PipelineStatus]:
        interval = request.interval_seconds or 1.0
        if not MIN_WATCH_INTERVAL_S <= interval <= MAX_WATCH_INTERVAL_S:
            raise InvalidArgumentError(
                "interval_seconds",
                f"expected {MIN_WATCH_INTERVAL_S} to {MAX_WATCH_INTERVAL_S} s (0 = 1 s), "
                f"got {interval:g}",
            )
        while context.is_active() and not self._stopping.is_set():
            yield self.status()
            if self._stopping.wait(interval):
                break

    def status(self) -> PipelineStatus:
        report = self._board.sources()
        status = PipelineStatus(
            pipeline=self._board.settings.pipeline,
            services=self._board.services(),
            sources=[] if report is None else report.sources,
            rates=self._board.rates(),
        )
        status.time.GetCurrentTime()
        return status

    # --- helpers ------------------------------------------------------------------------

    def _every_inference(
        self, command: Command, what: str, timeout: float, context: grpc.ServicerContext
    ) -> list[CommandReply]:
        """Send a command every serving inference instance applies; their replies once all
        have applied it, or the error that stands for the first refusal or the silence."""
        expected = set(self._board.serving("inference"))
        replies = self._sender.send(command, timeout, enough=_all_of(expected))
        if not replies:
            raise UnavailableError(_nobody("inference"))
        for answer in replies:
            _raise_refusal(answer, context)
        missing = expected - {r.instance for r in replies}
        if missing:
            applied = ", ".join(sorted(r.instance for r in replies))
            context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"applied by {applied}; no answer from {', '.join(sorted(missing))} in time "
                f"(an instance applies the stored {what} when it restarts)",
            )
        return replies

    def _one(self, command: Command, stage: str, context: grpc.ServicerContext) -> CommandReply:
        """Send a command one stage answers; its reply, or the error it stands for."""
        replies = self._sender.send(command, self._timeout(context))
        if not replies:
            raise UnavailableError(_nobody(stage))
        _raise_refusal(replies[0], context)
        return replies[0]

    def _timeout(self, context: grpc.ServicerContext, limit: float | None = None) -> float:
        timeout = self._settings.command_timeout_s if limit is None else limit
        remaining = context.time_remaining()
        if remaining is not None:  # answer before the caller's deadline, not after it
            timeout = min(timeout, max(remaining - 0.05, 0.01))
        return timeout

    def _report(self) -> SourcesReport:
        report = self._board.sources()
        if report is None:
            raise UnavailableError(
                f"no ingest has reported sources for pipeline {self._board.settings.pipeline!r}"
            )
        age = time.time() - report.time.ToNanoseconds() / 1e9
        if age > self._settings.report_stale_s:
            raise UnavailableError(
                f"the newest sources report of pipeline {self._board.settings.pipeline!r} is "
                f"{age:.0f} s old (ingest {report.instance!r} is not running?)"
            )
        return report


def _check_parameters(request: SetParametersRequest) -> None:
    """What needs no model to check; inference checks the class ids against its model."""
    if not request.thresholds and not request.HasField("interval"):
        raise InvalidArgumentError("thresholds", "nothing to set (no thresholds, no interval)")
    for i, item in enumerate(request.thresholds):
        if not 0.0 <= item.pre_cluster_threshold <= 1.0:
            raise InvalidArgumentError(
                f"thresholds[{i}].pre_cluster_threshold",
                f"expected 0 to 1, got {item.pre_cluster_threshold:g}",
            )


def _all_of(expected: set[str]) -> Callable[[list[CommandReply]], bool]:
    """Enough replies: every expected instance (or, when none is known, the first), or any
    refusal (the others will refuse alike: they serve the same model)."""

    def enough(got: list[CommandReply]) -> bool:
        if any(r.code != ReplyCode.OK for r in got):
            return True
        return expected <= {r.instance for r in got}

    return enough


def _raise_refusal(answer: CommandReply, context: grpc.ServicerContext) -> None:
    if answer.code == ReplyCode.OK:
        return
    code = _CODES.get(answer.code, grpc.StatusCode.UNKNOWN)
    context.abort(code, answer.message or code.name)


def _nobody(stage: str) -> str:
    return f"no {stage} service answered in time; nothing was changed (is the pipeline running?)"
