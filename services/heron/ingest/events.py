"""StreamEvent messages, built in one place (published to streams.events(pipeline))."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from heron.v1.stream_pb2 import SourceSpec, StreamEvent


def _now() -> Timestamp:
    stamp = Timestamp()
    stamp.GetCurrentTime()
    return stamp


def started(spec: SourceSpec) -> StreamEvent:
    event = StreamEvent(stream_id=spec.stream_id, time=_now())
    event.started.source.CopyFrom(spec)
    return event


def end_of_stream(stream_id: str, frames: int) -> StreamEvent:
    event = StreamEvent(stream_id=stream_id, time=_now())
    event.eos.frames = frames
    return event


def error(stream_id: str, message: str, *, fatal: bool) -> StreamEvent:
    event = StreamEvent(stream_id=stream_id, time=_now())
    event.error.message = message
    event.error.fatal = fatal
    return event


def reconnecting(stream_id: str, attempt: int, backoff_s: float, reason: str) -> StreamEvent:
    event = StreamEvent(stream_id=stream_id, time=_now())
    event.reconnecting.attempt = attempt
    event.reconnecting.backoff_seconds = backoff_s
    event.reconnecting.reason = reason
    return event
