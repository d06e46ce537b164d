"""Forming batches the way nvstreammux does: round-robin over sources, pushed when full or when
`batched-push-timeout` has run out since the first frame of the batch arrived.

Thread-safe: source readers `add` frames from their threads, the service thread `take`s
batches. Pure logic, no Redis: the unit tests drive it with a fake clock.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic, TypeVar

T = TypeVar("T")


class Trigger(StrEnum):
    """Why a batch was pushed (the `trigger` label of heron_streammux_batches_total)."""

    FULL = "full"
    TIMEOUT = "timeout"  # batched-push-timeout ran out: a partial batch
    EOS = "eos"  # a source ended: what it left is pushed at once
    DRAIN = "drain"  # the service is stopping


@dataclass(frozen=True)
class Taken(Generic[T]):
    items: list[tuple[str, T]]  # (stream id, item), per-source order kept
    trigger: Trigger
    batch_size: int  # the size it was formed for (fill ratio = len(items) / batch_size)
    waited_s: float = 0.0  # from the batch's first frame coming to the batch being formed


@dataclass
class _Source(Generic[T]):
    queue: deque[T] = field(default_factory=deque)
    ended: bool = False


class Batcher(Generic[T]):
    """Holds frames per source until they go out in a batch.

    `batch_size` None means one slot per live source (deepstream-app's default).
    `push_timeout_us` < 0 waits for a full batch (nvstreammux's -1).
    """

    def __init__(
        self,
        batch_size: int | None,
        push_timeout_us: int,
        *,
        max_pending_per_source: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batcher: expected batch_size >= 1 or None, got {batch_size}")
        if max_pending_per_source < 1:
            raise ValueError(
                f"batcher: expected max_pending_per_source >= 1, got {max_pending_per_source}"
            )
        self.fixed_batch_size = batch_size
        self.push_timeout_s = None if push_timeout_us < 0 else push_timeout_us / 1e6
        self.max_pending = max_pending_per_source
        self._clock = clock
        self._sources: dict[str, _Source[T]] = {}
        self._order: list[str] = []  # round-robin order; rotates after every batch
        self._cond = threading.Condition()
        self._batch_started: float | None = None  # when the first frame of this batch came
        self._eos_pending = False

    # --- sources ------------------------------------------------------------------------------

    def add_source(self, stream_id: str) -> bool:
        """Start batching `stream_id`; False if it is already here (a re-add revives it)."""
        with self._cond:
            source = self._sources.get(stream_id)
            if source is not None:
                source.ended = False
                return False
            self._sources[stream_id] = _Source()
            self._order.append(stream_id)
            self._cond.notify_all()
            return True

    def end_source(self, stream_id: str) -> None:
        """The source has ended: push what it left without waiting, then forget it."""
        with self._cond:
            source = self._sources.get(stream_id)
            if source is None:
                return
            source.ended = True
            if source.queue:
                self._eos_pending = True
            else:
                self._forget(stream_id)
            self._cond.notify_all()

    @property
    def sources(self) -> list[str]:
        with self._cond:
            return [s for s in self._order if not self._sources[s].ended]

    def batch_size(self) -> int:
        with self._cond:
            return self._batch_size()

    def _batch_size(self) -> int:
        if self.fixed_batch_size is not None:
            return self.fixed_batch_size
        return max(1, sum(1 for s in self._sources.values() if not s.ended))

    # --- frames -------------------------------------------------------------------------------

    def add(self, stream_id: str, items: Sequence[T]) -> None:
        """Frames of one source, in order (from its reader thread)."""
        if not items:
            return
        with self._cond:
            source = self._sources.get(stream_id)
            if source is None:
                raise KeyError(f"batcher: stream {stream_id!r} was not added (add_source first)")
            if self._batch_started is None:
                self._batch_started = self._clock()
            source.queue.extend(items)
            self._cond.notify_all()

    def wait_for_room(self, stream_id: str, timeout_s: float) -> bool:
        """Block a reader while its source holds `max_pending_per_source` frames."""
        with self._cond:
            return self._cond.wait_for(lambda: self._room(stream_id), timeout_s)

    def _room(self, stream_id: str) -> bool:
        return self.room(stream_id) > 0

    def room(self, stream_id: str) -> int:
        """How many more frames `stream_id` may hold now."""
        with self._cond:
            source = self._sources.get(stream_id)
            return self.max_pending - (0 if source is None else len(source.queue))

    def pending(self) -> int:
        with self._cond:
            return self._pending()

    def _pending(self) -> int:
        return sum(len(s.queue) for s in self._sources.values())

    def take(self, wait_s: float) -> Taken[T] | None:
        """The next batch, waiting at most `wait_s` for it to be due; None if none is due."""
        deadline = self._clock() + wait_s
        with self._cond:
            while True:
                trigger = self._due()
                if trigger is not None:
                    return self._form(trigger)
                now = self._clock()
                wake = deadline
                if self.push_timeout_s is not None and self._batch_started is not None:
                    wake = min(wake, self._batch_started + self.push_timeout_s)
                if now >= deadline:
                    return None
                self._cond.wait(max(0.0, wake - now))

    def drain(self) -> Taken[T] | None:
        """Whatever is left, as one last (possibly oversized) batch."""
        with self._cond:
            if not self._pending():
                return None
            size = self._batch_size()
            return self._form(Trigger.DRAIN, limit=self._pending(), batch_size=size)

    def _due(self) -> Trigger | None:
        pending = self._pending()
        if pending >= self._batch_size():
            return Trigger.FULL
        if pending and self._eos_pending:
            return Trigger.EOS
        if (
            pending
            and self.push_timeout_s is not None
            and self._batch_started is not None
            and self._clock() >= self._batch_started + self.push_timeout_s
        ):
            return Trigger.TIMEOUT
        return None

    def _form(self, trigger: Trigger, limit: int | None = None, batch_size: int = 0) -> Taken[T]:
        size = batch_size or self._batch_size()
        limit = size if limit is None else limit
        items: list[tuple[str, T]] = []
        # Round-robin: one frame per source per round; the next batch goes on from the source
        # after the last one served, so no source is always first (or always left over).
        last = -1
        while len(items) < limit:
            took = False
            for index, stream_id in enumerate(self._order):
                queue = self._sources[stream_id].queue
                if queue and len(items) < limit:
                    items.append((stream_id, queue.popleft()))
                    took, last = True, index
            if not took:
                break
        if last >= 0:
            self._order = self._order[last + 1 :] + self._order[: last + 1]
        for stream_id in [s for s, src in self._sources.items() if src.ended and not src.queue]:
            self._forget(stream_id)
        self._eos_pending = any(s.ended and s.queue for s in self._sources.values())
        now = self._clock()
        waited = 0.0 if self._batch_started is None else max(0.0, now - self._batch_started)
        # The next batch's timer starts now if frames are already waiting, else at the next one.
        self._batch_started = now if self._pending() else None
        self._cond.notify_all()  # readers waiting for room
        return Taken(items, trigger, size, waited)

    def _forget(self, stream_id: str) -> None:
        del self._sources[stream_id]
        self._order.remove(stream_id)
