"""Every Redis stream name Heron uses, built in one place.

Services never spell a stream name themselves: they call these functions, so a
rename touches one file and a typo is an AttributeError, not a silent new stream.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

PREFIX = "heron"
DEFAULT_PIPELINE = "default"  # the pipeline name when none is given, here and in settings
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class Retention(Enum):
    """How a stream may be trimmed (see DESIGN.md, "Metadata is never trimmed unread")."""

    DROP_OLDEST = "drop_oldest"  # frames: latest-frame-wins, drops are counted
    KEEP_UNREAD = "keep_unread"  # metadata/events: never trimmed past unacknowledged entries


@dataclass(frozen=True)
class StreamName:
    """A stream's key, the message type it carries and how it may be trimmed."""

    key: str
    message_type: str  # full protobuf name, e.g. "heron.v1.FrameRef"
    retention: Retention

    def __str__(self) -> str:
        return self.key


def _check_id(kind: str, value: str) -> str:
    if not _ID.match(value):
        raise ValueError(
            f"{kind} {value!r} is not a valid stream id: expected 1-128 characters of "
            "letters, digits, '_', '.', '-', starting with a letter or digit"
        )
    return value


def frames(stream_id: str) -> StreamName:
    """Decoded frames of one source (FrameRef), written by ingest."""
    return StreamName(
        f"{PREFIX}:frames:{_check_id('stream', stream_id)}",
        "heron.v1.FrameRef",
        Retention.DROP_OLDEST,
    )


def batches(pipeline: str = DEFAULT_PIPELINE) -> StreamName:
    """Batched frames (FrameBatch), written by the stream muxer."""
    return StreamName(
        f"{PREFIX}:batches:{_check_id('pipeline', pipeline)}",
        "heron.v1.FrameBatch",
        Retention.DROP_OLDEST,
    )


def metadata(stage: str, pipeline: str = DEFAULT_PIPELINE) -> StreamName:
    """Per-frame metadata (FrameMetadata) after a stage: "inference", "tracker", ..."""
    return StreamName(
        f"{PREFIX}:meta:{_check_id('pipeline', pipeline)}:{_check_id('stage', stage)}",
        "heron.v1.FrameMetadata",
        Retention.KEEP_UNREAD,
    )


def events(pipeline: str = DEFAULT_PIPELINE) -> StreamName:
    """Stream life-cycle events (StreamEvent) of every source of a pipeline."""
    return StreamName(
        f"{PREFIX}:events:{_check_id('pipeline', pipeline)}",
        "heron.v1.StreamEvent",
        Retention.KEEP_UNREAD,
    )


def dead_letter(stream: StreamName | str) -> StreamName:
    """Where undeliverable messages of `stream` go (DeadLetter), with the reason."""
    key = stream.key if isinstance(stream, StreamName) else stream
    return StreamName(f"{key}:dead", "heron.v1.DeadLetter", Retention.KEEP_UNREAD)


# --- run-time control (protos/heron/v1/commands.proto) -------------------------------------
# Small streams read from the newest entry or tailed live, never through consumer groups:
# drop-oldest keeps each bounded (retention.drop_oldest_max_len entries).


def commands(pipeline: str = DEFAULT_PIPELINE) -> StreamName:
    """Run-time changes (Command) from the control service to the stage that owns them."""
    return StreamName(
        f"{PREFIX}:commands:{_check_id('pipeline', pipeline)}",
        "heron.v1.Command",
        Retention.DROP_OLDEST,
    )


def replies(pipeline: str = DEFAULT_PIPELINE) -> StreamName:
    """Answers (CommandReply) of the stages that applied, or refused, a Command."""
    return StreamName(
        f"{PREFIX}:replies:{_check_id('pipeline', pipeline)}",
        "heron.v1.CommandReply",
        Retention.DROP_OLDEST,
    )


def source_changes(pipeline: str = DEFAULT_PIPELINE) -> StreamName:
    """Ingest's run-time changes to the config's sources (SourceChanges); the newest holds all."""
    return StreamName(
        f"{PREFIX}:sources:{_check_id('pipeline', pipeline)}",
        "heron.v1.SourceChanges",
        Retention.DROP_OLDEST,
    )


def parameters(pipeline: str = DEFAULT_PIPELINE) -> StreamName:
    """Inference's run-time parameters (Parameters); the newest holds all."""
    return StreamName(
        f"{PREFIX}:parameters:{_check_id('pipeline', pipeline)}",
        "heron.v1.Parameters",
        Retention.DROP_OLDEST,
    )


def model_versions(pipeline: str = DEFAULT_PIPELINE) -> StreamName:
    """Inference's routing of streams to model versions (ModelVersions); the newest is in force."""
    return StreamName(
        f"{PREFIX}:model-versions:{_check_id('pipeline', pipeline)}",
        "heron.v1.ModelVersions",
        Retention.DROP_OLDEST,
    )


def source_status(pipeline: str = DEFAULT_PIPELINE) -> StreamName:
    """What ingest runs (SourcesReport), every report interval and at each change."""
    return StreamName(
        f"{PREFIX}:status:{_check_id('pipeline', pipeline)}:sources",
        "heron.v1.SourcesReport",
        Retention.DROP_OLDEST,
    )


def service_status(pipeline: str = DEFAULT_PIPELINE) -> StreamName:
    """Every service's heartbeat (ServiceStatus): serving or not, and why."""
    return StreamName(
        f"{PREFIX}:status:{_check_id('pipeline', pipeline)}:services",
        "heron.v1.ServiceStatus",
        Retention.DROP_OLDEST,
    )
