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
