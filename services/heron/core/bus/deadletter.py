"""Turning a message nobody can use into a heron.v1.DeadLetter, with the reason."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.timestamp_pb2 import Timestamp

from heron.core.bus.codec import PB_FIELD
from heron.core.bus.errors import DeadLetterReason
from heron.core.bus.replies import RawEntry
from heron.v1.bus_pb2 import DeadLetter


@dataclass(frozen=True)
class Rejected:
    """An entry a consumer gives up on, and why."""

    entry: RawEntry
    deliveries: int
    reason: DeadLetterReason
    detail: str  # human-readable, starts with the reason's value


def to_dead_letter(rejected: Rejected, *, stream: str, group: str, type_name: str) -> DeadLetter:
    return dead_letter(
        stream=stream,
        message_id=rejected.entry.id,
        group=group,
        type_name=type_name,
        reason=rejected.detail,
        # The serialized message untouched; empty when the entry had no `pb` field at all.
        payload=rejected.entry.fields.get(PB_FIELD, b""),
        deliveries=rejected.deliveries,
    )


def dead_letter(
    *,
    stream: str,
    message_id: str,
    group: str,
    type_name: str,
    reason: str,
    payload: bytes,
    deliveries: int,
) -> DeadLetter:
    """A DeadLetter stamped now: the one shape the bus and every stage send."""
    time = Timestamp()
    time.GetCurrentTime()
    return DeadLetter(
        stream=stream,
        message_id=message_id,
        group=group,
        type_name=type_name,
        reason=reason,
        payload=payload,
        time=time,
        deliveries=deliveries,
    )


def reason_text(reason: str, detail: str) -> str:
    """The DeadLetter's `reason`: it always starts with the reason's name (docs/bus.md)."""
    if not detail:
        return reason
    return detail if detail.startswith(reason) else f"{reason}: {detail}"
