"""How one protobuf message is laid out in a stream entry.

An entry has the serialized message in field `pb` plus small optional headers: `type` (the
message's full protobuf name) and `ts` (publish time, integer nanoseconds since the epoch).
Headers let a consumer refuse a wrong message before parsing and measure delivery latency.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from google.protobuf.message import DecodeError, Message

from heron.core.bus.errors import DeadLetterReason, UndecodableMessageError

PB_FIELD = b"pb"
TYPE_FIELD = b"type"
TIME_FIELD = b"ts"

M = TypeVar("M", bound=Message)
Entry = dict[bytes, bytes]


@dataclass(frozen=True)
class Decoded(Generic[M]):
    message: M
    published_ns: int | None  # None when the entry carried no `ts` header


def type_name(message_class: type[Message]) -> str:
    return str(message_class.DESCRIPTOR.full_name)


def encode(message: Message, now_ns: int | None = None) -> Entry:
    """The fields of one stream entry for `message`."""
    ts = time.time_ns() if now_ns is None else now_ns
    return {
        PB_FIELD: message.SerializeToString(),
        TYPE_FIELD: type_name(type(message)).encode(),
        TIME_FIELD: str(ts).encode(),
    }


def decode(fields: Mapping[bytes, bytes], message_class: type[M]) -> Decoded[M]:
    """Parse one entry's fields; raise UndecodableMessageError saying what was wrong."""
    expected = type_name(message_class)
    payload = fields.get(PB_FIELD)
    if payload is None:
        present = ", ".join(sorted(repr(k.decode(errors="replace")) for k in fields)) or "none"
        raise UndecodableMessageError(
            DeadLetterReason.MISSING_FIELD,
            f"expected field 'pb' with a serialized {expected}; fields present: {present}",
        )
    header = fields.get(TYPE_FIELD)
    if header is not None and header.decode(errors="replace") != expected:
        raise UndecodableMessageError(
            DeadLetterReason.WRONG_TYPE,
            f"type header is {header.decode(errors='replace')!r}, expected {expected!r}",
        )
    published_ns = _parse_time(fields.get(TIME_FIELD))
    try:
        message = message_class.FromString(payload)
    except DecodeError as e:
        raise UndecodableMessageError(
            DeadLetterReason.BAD_PROTOBUF,
            f"{len(payload)} bytes in field 'pb' do not parse as {expected}: {e}",
        ) from e
    return Decoded(message, published_ns)


def _parse_time(raw: bytes | None) -> int | None:
    if raw is None:
        return None
    text = raw.decode(errors="replace")
    # 20 digits hold any int64; a longer run would also exceed int()'s digit limit (ValueError).
    if not text.isascii() or not text.isdigit() or len(text) > 20:
        raise UndecodableMessageError(
            DeadLetterReason.BAD_HEADER,
            f"ts header is {text!r}, expected integer nanoseconds since the epoch",
        )
    return int(text)
