"""AddSource requests checked and planned: the ids a run-time source gets, and refusals that
name the field ("source.uri: required") with the gRPC code the caller gets back.

A run-time source is planned by the same function as a config source's URI
(heron.core.plan.sources), so a URI the config would refuse is refused here with the same words.
"""

from __future__ import annotations

import itertools
from collections.abc import Set
from dataclasses import dataclass

from heron.core import streams
from heron.core.commands import ReplyCode, reply
from heron.core.config.models import stream_id_for
from heron.core.media_uri import MediaKind, UriError
from heron.core.plan.sources import PlannedSource, plan_source
from heron.v1.commands_pb2 import CommandReply
from heron.v1.stream_pb2 import SourceSpec, SourceType

GROUP = "added at run time"  # PlannedSource.group: where the source came from, for logs

_TYPES = {
    MediaKind.RTSP: SourceType.SOURCE_TYPE_RTSP,
    MediaKind.V4L2: SourceType.SOURCE_TYPE_CAMERA_V4L2,
}


class RefusedError(Exception):
    """A command ingest will not apply: its reply code and "field: problem"."""

    def __init__(self, code: ReplyCode, message: str) -> None:
        super().__init__(message)
        self.code = code

    def reply(self) -> CommandReply:
        return reply(self.code, str(self))


@dataclass(frozen=True)
class InUse:
    """The ids the pipeline holds when a source is added."""

    running: Set[str]  # stream ids of sources that have neither ended nor been removed
    known: Set[str]  # every stream id of this run: running, ended and removed recently
    source_ids: Set[int]  # source ids of running sources


def plan_added(request: SourceSpec, in_use: InUse) -> PlannedSource:
    """The planned source for an AddSource request, ids assigned; raises RefusedError."""
    if not request.uri:
        raise RefusedError(ReplyCode.INVALID_ARGUMENT, "source.uri: required")
    spec = SourceSpec()
    spec.CopyFrom(request)  # the caller's message stays as sent
    spec.stream_id = _stream_id(spec.stream_id, in_use)
    spec.source_id = _source_id(spec.source_id, in_use)
    try:
        planned = plan_source(spec, GROUP)
    except UriError as e:
        raise RefusedError(ReplyCode.INVALID_ARGUMENT, f"source.uri: {e}") from None
    if spec.type == SourceType.SOURCE_TYPE_UNSPECIFIED:
        spec.type = _TYPES.get(planned.target.kind, SourceType.SOURCE_TYPE_URI)
    return planned


def next_stream_id(taken: Set[str]) -> str:
    """The first `source-N` not in `taken`."""
    return next(s for s in map(stream_id_for, itertools.count()) if s not in taken)


def next_source_id(taken: Set[int]) -> int:
    """One above the highest source id in use (0 when none is)."""
    return max(taken, default=-1) + 1


def _stream_id(given: str, in_use: InUse) -> str:
    if not given:
        return next_stream_id(in_use.known)
    try:
        streams.frames(given)
    except ValueError as e:
        raise RefusedError(ReplyCode.INVALID_ARGUMENT, f"source.stream_id: {e}") from None
    if given in in_use.running:
        raise RefusedError(
            ReplyCode.ALREADY_EXISTS,
            f"source.stream_id: {given} is already a source of this pipeline",
        )
    return given


def _source_id(given: int, in_use: InUse) -> int:
    # Config source ids start at 0, so 0 here means "assign one" (proto3 cannot tell 0 from
    # unset): a run-time source never gets 0 unless no source runs.
    if given == 0:
        return next_source_id(in_use.source_ids)
    if given in in_use.source_ids:
        raise RefusedError(
            ReplyCode.ALREADY_EXISTS,
            f"source.source_id: {given} is already used by a source of this pipeline",
        )
    return given
