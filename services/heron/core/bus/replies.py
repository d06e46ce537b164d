"""Redis stream replies turned into typed values, checked as they are read.

redis-py types these replies loosely (they differ between RESP2/RESP3 and sync/async); the bus
pins RESP2 and checks the shapes here so a protocol surprise is a clear ReplyError, not an
IndexError three calls later.
"""

from __future__ import annotations

from dataclasses import dataclass

from heron.core.bus.errors import ReplyError


@dataclass(frozen=True)
class RawEntry:
    """One stream entry as Redis holds it."""

    id: str
    fields: dict[bytes, bytes]


def text(value: object, what: str) -> str:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, str):
        return value
    raise ReplyError(f"{what}: expected a string, got {type(value).__name__}")


def entries(reply: object, what: str) -> list[RawEntry]:
    """A list of (id, fields) pairs; entries whose data was trimmed (fields nil) are skipped."""
    if not isinstance(reply, list):
        raise ReplyError(f"{what}: expected a list of entries, got {type(reply).__name__}")
    out: list[RawEntry] = []
    for item in reply:
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise ReplyError(f"{what}: expected (id, fields) pairs, got {item!r:.80}")
        entry_id, fields = item
        if fields is None:
            continue
        if not isinstance(fields, dict):
            raise ReplyError(f"{what}: expected a field map, got {type(fields).__name__}")
        out.append(
            RawEntry(
                text(entry_id, what),
                {_bytes(k, what): _bytes(v, what) for k, v in fields.items()},
            )
        )
    return out


def xreadgroup_entries(reply: object) -> list[RawEntry]:
    """XREADGROUP on one stream: [] on timeout, else [[key, entries]]."""
    if reply is None or reply == []:
        return []
    if not isinstance(reply, list) or len(reply) != 1 or not isinstance(reply[0], list | tuple):
        raise ReplyError(f"XREADGROUP: expected [[stream, entries]], got {reply!r:.80}")
    return entries(reply[0][1], "XREADGROUP")


def xautoclaim_reply(reply: object) -> tuple[str, list[RawEntry], list[str]]:
    """XAUTOCLAIM (Redis >= 7): next cursor, claimed entries, ids whose data was trimmed."""
    if not isinstance(reply, list) or len(reply) != 3 or not isinstance(reply[2], list):
        raise ReplyError(
            f"XAUTOCLAIM: expected [cursor, entries, deleted ids] (Redis >= 7), got {reply!r:.80}"
        )
    cursor, claimed, deleted = reply
    return (
        text(cursor, "XAUTOCLAIM"),
        entries(claimed, "XAUTOCLAIM"),
        [text(d, "XAUTOCLAIM") for d in deleted],
    )


def _bytes(value: object, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise ReplyError(f"{what}: expected bytes in an entry, got {type(value).__name__}")
