"""Reading a stream from a position without a consumer group: what a subscriber does.

A consumer group's pending entries hold a keep-unread stream back (heron.core.bus.retention);
a subscriber that follows the stream from a position it remembers holds nothing back, so a
slow or vanished subscriber never slows the pipeline. The price is that the stream may be
trimmed past a subscriber's position: the read then says how many entries it missed.

Positions are `Cursor`s: an entry id and the entry's number in the stream's history (the
stream's entries-added count when it was added). Entries leave a stream only from its front
(XTRIM; Heron never XDELs a metadata entry), so the entries a stream holds are numbered
`added - length + 1 .. added` in id order, and numbers chain from one read to the next. The
number is what makes `missed` exact: of the entries before the oldest one held, those after a
cursor are `added - length - cursor.number`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import redis

from heron.core.bus import codec
from heron.core.bus.codec import M
from heron.core.bus.errors import BusUnavailableError, ReplyError, UndecodableMessageError
from heron.core.bus.ids import id_before, parse_id
from heron.core.bus.publisher import check_message_class
from heron.core.streams import StreamName

R = TypeVar("R")  # an entry as a transport holds it


@dataclass(frozen=True)
class Cursor:
    """A place in a stream's history: after entry `id`, which was entry `number` (from 1) of
    every entry ever added; Cursor("0-0", 0) is before the first."""

    id: str
    number: int

    @property
    def key(self) -> tuple[int, int]:
        return parse_id(self.id)


START = Cursor("0-0", 0)


@dataclass(frozen=True)
class TailEntry(Generic[M]):
    """One entry read: its cursor, and its message (None when it does not decode: `problem`)."""

    cursor: Cursor
    message: M | None
    published_ns: int | None
    problem: str = ""


@dataclass(frozen=True)
class TailRead(Generic[M]):
    """What one read found after a cursor."""

    start: Cursor  # the cursor `entries` follow: the one asked for, or past what was missed
    entries: list[TailEntry[M]]
    missed: int  # entries after the cursor asked for that the stream no longer held
    newest: Cursor  # the stream's newest entry when read (how far behind a reader is)

    @property
    def end(self) -> Cursor:
        """Where the next read goes on from: after the last entry read, or where this read
        started (past what was missed) when it found none."""
        return self.entries[-1].cursor if self.entries else self.start


@dataclass(frozen=True)
class Window:
    """What a stream holds, from one atomic look: its history's count and its ends."""

    added: int  # entries ever added (XINFO STREAM entries-added)
    length: int
    first_id: str | None  # the oldest entry held; None when it holds none
    last_id: str  # the newest id ever given (last-generated-id); "0-0" before any

    @property
    def newest(self) -> Cursor:
        return Cursor(self.last_id, self.added)

    @property
    def oldest(self) -> Cursor:
        """Just before the oldest entry held (or at the newest, when it holds none)."""
        if self.first_id is None:
            return self.newest
        return Cursor(id_before(self.first_id), self.added - self.length)

    def place(self, after: Cursor) -> tuple[Cursor, int]:
        """Where a read after `after` starts, and how many entries it missed on the way."""
        if after.key > parse_id(self.last_id):
            # Not a position of this stream's history: it was made again (a Redis that lost
            # its data) since. Go on with what is newer than it, numbered as this stream counts.
            return Cursor(after.id, self.added), 0
        trimmed = self.added - self.length
        held_from = parse_id(self.first_id) if self.first_id is not None else None
        if held_from is None:
            if after.key == parse_id(self.last_id):
                return after, 0
            return self.newest, _missed(trimmed, after.number)
        if after.key >= held_from:
            return after, 0
        return self.oldest, _missed(trimmed, after.number)


def _missed(trimmed: int, number: int) -> int:
    # A number past what was trimmed before an id older than the oldest held cannot be this
    # stream's (it was deleted and made again): all that is known lost is what it trimmed.
    return trimmed - number if number <= trimmed else trimmed


# KEYS[1] stream; ARGV[1] read after this id; ARGV[2] count. One atomic look: nothing can be
# trimmed between reading the window and the entries.
_LUA_READ = """
local key, after, count = KEYS[1], ARGV[1], tonumber(ARGV[2])
if redis.call('EXISTS', key) == 0 then return {0, 0, false, '0-0', {}} end
local info = redis.call('XINFO', 'STREAM', key)
local f = {}
for i = 1, #info, 2 do f[info[i]] = info[i + 1] end
local first = false
if f['first-entry'] then first = f['first-entry'][1] end
local entries = redis.call('XRANGE', key, '(' .. after, '+', 'COUNT', count)
return {f['entries-added'], f['length'], first, f['last-generated-id'], entries}
"""


def _decode(fields: dict[bytes, bytes], message_class: type[M]) -> tuple[M | None, int | None, str]:
    try:
        decoded = codec.decode(fields, message_class)
    except UndecodableMessageError as e:
        return None, None, str(e)
    return decoded.message, decoded.published_ns, ""


def numbered(
    start: Cursor,
    raw: list[tuple[str, R]],
    decode: Callable[[R], tuple[M | None, int | None, str]],
) -> list[TailEntry[M]]:
    """The entries read after `start`, numbered on from it."""
    return [
        TailEntry(Cursor(entry_id, start.number + i), *decode(fields))
        for i, (entry_id, fields) in enumerate(raw, start=1)
    ]


class RedisTail(Generic[M]):
    """`Tail` of one Redis stream. Fails fast (BusUnavailableError) when Redis is away: a
    subscriber is told at once and resumes from its position, rather than waiting blind."""

    def __init__(self, client: redis.Redis, stream: StreamName, message_class: type[M]) -> None:
        check_message_class(stream, message_class)
        self.stream = stream
        self.message_class = message_class
        self._client = client
        self._read = client.register_script(_LUA_READ)

    @property
    def key(self) -> str:
        return self.stream.key

    def window(self) -> Window:
        return self._snapshot(START, 1)[0]

    def read(self, after: Cursor, count: int, block_ms: int = 0) -> TailRead[M]:
        """Up to `count` entries after `after`; waits up to `block_ms` when there are none."""
        window, raw = self._snapshot(after, count)
        start, missed = window.place(after)
        if not raw and not missed and block_ms > 0:
            self._wait(start.id, block_ms)
            window, raw = self._snapshot(after, count)
            start, missed = window.place(after)
        entries = numbered(start, raw, lambda f: _decode(f, self.message_class))
        return TailRead(start, entries, missed, window.newest)

    def _wait(self, after_id: str, block_ms: int) -> None:
        try:
            self._client.xread({self.key: after_id}, count=1, block=block_ms)
        except (redis.ConnectionError, redis.TimeoutError) as e:
            raise BusUnavailableError(f"Redis did not answer a read of {self.key!r}: {e}") from e

    def _snapshot(
        self, after: Cursor, count: int
    ) -> tuple[Window, list[tuple[str, dict[bytes, bytes]]]]:
        try:
            reply = self._read(keys=[self.key], args=[after.id, count], client=self._client)
        except (redis.ConnectionError, redis.TimeoutError) as e:
            raise BusUnavailableError(f"Redis did not answer a read of {self.key!r}: {e}") from e
        if not isinstance(reply, list) or len(reply) != 5 or not isinstance(reply[4], list):
            raise ReplyError(f"tail read of {self.key!r}: unexpected reply {reply!r:.80}")
        added, length, first, last, entries = reply
        window = Window(int(added), int(length), _text(first) if first else None, _text(last))
        return window, [_entry(e, self.key) for e in entries]


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def _entry(item: object, key: str) -> tuple[str, dict[bytes, bytes]]:
    if not isinstance(item, list) or len(item) != 2 or not isinstance(item[1], list):
        raise ReplyError(f"tail read of {key!r}: expected [id, fields], got {item!r:.80}")
    words = item[1]
    fields = {
        bytes(words[i]): bytes(words[i + 1])
        for i in range(0, len(words) - 1, 2)
        if isinstance(words[i], bytes) and isinstance(words[i + 1], bytes)
    }
    return _text(item[0]), fields


__all__ = [
    "START",
    "Cursor",
    "RedisTail",
    "TailEntry",
    "TailRead",
    "Window",
    "numbered",
]
