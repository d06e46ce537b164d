"""One shared reader of a stream for every live subscription: one read and one decode a frame.

Without it each subscription reads and decodes the whole stream itself (heron.core.bus.tail),
and the server's work grows with the subscribers. A `SharedTail` runs one reader thread per
stream key: started by the first subscription, it follows the stream from its newest entry,
decoding each entry once and preparing it once (the servicer's `prepare` makes the event an
unfiltered subscriber gets), and keeps the newest `capacity` of them, with their cursors, in
a ring. A subscription
whose cursor is in the ring takes what follows it from there (no read of the bus, no decode);
one whose cursor is not (behind the ring: resuming from an old position, from_oldest, or a
slow client the ring moved past; or ahead of a reader still catching up) reads the stream
itself, as it did before there was a ring, until its cursor is in the ring again.

The ring only ever holds entries in the stream's order, numbered as the stream numbers them,
with nothing left out: the reader appends a read only when it continues exactly from the
ring's newest cursor, and starts the ring afresh (empty, at the cursor the read continued
from) when a trim or a stream made again moved it. So a subscription served from the ring gets
exactly what a read of its own would have given, at the same positions; what it may lose
(trims, max_behind) it learns from its own reads and from `newest`, as before.

The reader never waits for a subscription: the ring just moves on. It stops when the service
stops, when no subscription has used it for `idle_s`, or on an error (Redis gone): then
subscriptions read the stream themselves, and meet the error in their own reads, until a
subscription starts it again (not sooner than `retry_s` after a failure).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from heron.core.bus import BusUnavailableError, Cursor, Tail, TailEntry
from heron.core.bus.codec import M

log = logging.getLogger(__name__)

P = TypeVar("P")  # an entry as the ring keeps it, prepared once for every subscription


@dataclass(frozen=True)
class ReaderOptions:
    capacity: int  # entries the ring keeps
    read_count: int  # entries per read of the stream
    block_ms: int  # longest wait of one read: the reader notices a stop within it
    idle_s: float = 10.0  # a reader no subscription used for this long stops
    # A reader that failed is started again no sooner than this. A fixed hold-off, not
    # heron.core.backoff: nothing waits on it (subscriptions read the stream themselves
    # meanwhile, and their clients resume with the backoff of heron.client), it only keeps a
    # dead Redis from getting a new reader thread at every subscription's read.
    retry_s: float = 1.0


class Ring(Generic[P]):
    """The newest `capacity` entries read, in order and numbered without a hole: the entries
    after `base` up to `head` (`head == base` when empty). Not thread-safe on its own."""

    def __init__(self, capacity: int, at: Cursor) -> None:
        if capacity < 1:
            raise ValueError(f"a ring holds at least 1 entry, got {capacity}")
        self.capacity = capacity
        self._slots: list[tuple[Cursor, P] | None] = [None] * capacity
        self.base = at  # just before the oldest entry held
        self.head = at  # the newest entry held
        self.size = 0

    def reset(self, at: Cursor) -> None:
        """Empty, continuing from `at`."""
        if self.size:
            self._slots = [None] * self.capacity
        self.base = self.head = at
        self.size = 0

    def append(self, cursor: Cursor, item: P) -> None:
        """The entry right after `head` (its number is head's plus one)."""
        assert cursor.number == self.head.number + 1, (cursor, self.head)
        slot = cursor.number % self.capacity
        if self.size == self.capacity:  # the slot holds the oldest entry: it leaves
            evicted = self._slots[slot]
            assert evicted is not None
            self.base = evicted[0]
        else:
            self.size += 1
        self._slots[slot] = (cursor, item)
        self.head = cursor

    def holds(self, after: Cursor) -> bool:
        """Whether the entries after `after` are the ring's from some point on: `after` is
        `base` or an entry held (the same id and number)."""
        number = after.number
        if number == self.base.number:
            return after == self.base
        if not self.base.number < number <= self.head.number:
            return False
        held = self._slots[number % self.capacity]
        return held is not None and held[0] == after

    def after(self, after: Cursor, count: int) -> list[P]:
        """Up to `count` entries after `after`, which the ring holds (`holds`)."""
        first = after.number + 1
        last = min(after.number + count, self.head.number)
        slots, capacity = self._slots, self.capacity
        out: list[P] = []
        for number in range(first, last + 1):
            held = slots[number % capacity]
            assert held is not None
            out.append(held[1])
        return out


class SharedTail(Generic[M, P]):
    """A stream's shared reader and ring; subscriptions `attach`, `read` and `detach`."""

    def __init__(
        self,
        tail: Tail[M],
        prepare: Callable[[TailEntry[M]], P],
        options: ReaderOptions,
        stopping: threading.Event,
    ) -> None:
        self._tail = tail
        self._prepare = prepare
        self._options = options
        self._stopping = stopping
        self._changed = threading.Condition()
        self._ring: Ring[P] = Ring(options.capacity, Cursor("0-0", 0))
        self._newest = self._ring.head  # the stream's newest entry at the reader's last read
        self._running = False  # a reader thread is started and has not decided to stop
        self._users = 0
        self._idle_since = time.monotonic()
        self._failed_at: float | None = None
        self._thread: threading.Thread | None = None
        self.starts = 0  # reader threads started, for tests and logs

    @property
    def key(self) -> str:
        return self._tail.key

    @property
    def running(self) -> bool:
        with self._changed:
            return self._running

    @property
    def held(self) -> int:
        """Entries the ring holds now: never more than `capacity`, however slow a subscriber."""
        with self._changed:
            return self._ring.size

    @property
    def thread(self) -> threading.Thread | None:
        """The newest reader thread (it may have ended)."""
        return self._thread

    def attach(self) -> None:
        """A subscription begins: start the reader unless it runs."""
        with self._changed:
            self._users += 1
            self._ensure()

    def detach(self) -> None:
        with self._changed:
            self._users -= 1
            if self._users == 0:
                self._idle_since = time.monotonic()

    def read(self, after: Cursor, count: int, wait_s: float) -> tuple[list[P], Cursor] | None:
        """Up to `count` entries after `after` from the ring, waiting up to `wait_s` for one
        when there are none yet, and the stream's newest cursor as the reader last saw it.
        None when the ring does not hold `after`, or it is at the ring's newest and no reader
        runs: read the stream instead."""
        with self._changed:
            self._ensure()
            if not self._ring.holds(after):
                return None
            items = self._ring.after(after, count)
            if not items:
                if not self._running:
                    return None
                self._changed.wait(wait_s)
                if not self._ring.holds(after):
                    return None
                items = self._ring.after(after, count)
                if not items and not self._running:
                    return None
            return items, self._newest

    def _ensure(self) -> None:
        """Start the reader, under the lock, unless it runs, the service stops, or it failed
        less than retry_s ago."""
        if self._running or self._stopping.is_set():
            return
        if (
            self._failed_at is not None
            and time.monotonic() - self._failed_at < self._options.retry_s
        ):
            return
        self._running = True
        self.starts += 1
        self._thread = threading.Thread(
            target=self._run, name=f"heron-fanout {self.key}", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        failed = False
        try:
            head = self._tail.window().newest
            with self._changed:
                self._ring.reset(head)
                self._newest = head
                self._changed.notify_all()
            while self._go_on():
                read = self._tail.read(head, self._options.read_count, self._options.block_ms)
                items = [(e.cursor, self._prepare(e)) for e in read.entries]
                with self._changed:
                    if read.start != head:  # a trim, or a stream made again: start afresh
                        self._ring.reset(read.start)
                    for cursor, item in items:
                        self._ring.append(cursor, item)
                    self._newest = read.newest
                    self._changed.notify_all()
                head = items[-1][0] if items else read.start
        except BusUnavailableError as e:
            failed = True
            if not self._stopping.is_set():
                log.warning(
                    "the shared reader of %s stopped: %s; subscriptions read the stream "
                    "themselves until it starts again",
                    self.key,
                    e,
                )
        except Exception:
            failed = True
            if not self._stopping.is_set():  # not a bus closed under it at stop
                log.exception("the shared reader of %s failed", self.key)
        finally:
            with self._changed:
                if self._thread is threading.current_thread():  # not a newer reader's state
                    self._running = False
                    if failed:
                        self._failed_at = time.monotonic()
                self._changed.notify_all()

    def _go_on(self) -> bool:
        """Whether to read on; when not, the reader counts as stopped from here (a
        subscription that attaches now starts another)."""
        if self._stopping.is_set():
            return False
        with self._changed:
            if self._users == 0 and time.monotonic() - self._idle_since >= self._options.idle_s:
                self._running = False
                return False
            return True


class SharedTails(Generic[M, P]):
    """The shared readers of a service, one per stream key, made on first use."""

    def __init__(
        self,
        prepare: Callable[[TailEntry[M]], P],
        options: ReaderOptions,
        stopping: threading.Event,
    ) -> None:
        self._prepare = prepare
        self._options = options
        self._stopping = stopping
        self._lock = threading.Lock()
        self._shared: dict[str, SharedTail[M, P]] = {}

    def of(self, tail: Tail[M]) -> SharedTail[M, P]:
        with self._lock:
            shared = self._shared.get(tail.key)
            if shared is None:
                shared = SharedTail(tail, self._prepare, self._options, self._stopping)
                self._shared[tail.key] = shared
            return shared

    def all(self) -> list[SharedTail[M, P]]:
        with self._lock:
            return list(self._shared.values())
