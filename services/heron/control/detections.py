"""Detections.Subscribe: the last stage's per-frame metadata, from a position, filtered.

The metadata stream is read without a consumer group (heron.core.bus.tail), so no
subscriber holds anything back: the pipeline never waits for one. What a subscriber holds is
bounded: one read (`read_count` entries) in hand, gRPC's flow control window in flight, and its
lag behind the newest frame (`max_behind`; past it, it skips to the newest). Whatever it loses,
trimmed or skipped, it is told about with a Gap that counts the frames, and the count goes to
heron_control_missed_frames_total.

A Gap is sent just before the first frame after it, so `resumed_at` is that frame's position;
a subscription that ends before any frame follows sends none, and the client resuming from its
last position is told at its next subscription instead.

Live subscriptions share one reader of the stream (heron.control.fanout; unless
`fanout_entries` is 0): it reads and decodes each entry once and makes the event an unfiltered
subscriber gets, once for all of them. A subscription whose position is among the newest
`fanout_entries` entries it read takes what follows from there; one that is not (behind them,
or ahead of a reader still catching up) reads the stream itself, as every subscription did
before, until it is. Either way it gets the same entries at the same positions, and the loop
below treats both alike.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import grpc

from heron.control.fanout import ReaderOptions, SharedTail, SharedTails
from heron.control.metrics import SubscribeMetrics
from heron.control.positions import position_text
from heron.control.query import Query, parse_query
from heron.core.bus import BusUnavailableError, Cursor, Tail, TailEntry
from heron.core.grpc import UnavailableError
from heron.core.plan.settings.control import SubscribeSettings
from heron.v1 import control_pb2_grpc
from heron.v1.control_pb2 import DetectionEvent, Gap, SubscribeRequest
from heron.v1.detection_pb2 import FrameMetadata

log = logging.getLogger(__name__)

T = TypeVar("T")

SERVICE = "heron.v1.Detections"
RESUME_HINT = "subscribe again with `after` set to the last position you received"


# An entry as the loop takes it: decoded (or why not), with the event an unfiltered subscriber
# gets when the shared reader made it once for every subscription (None: make it here).
Item = tuple[TailEntry[FrameMetadata], DetectionEvent | None]


@dataclass(frozen=True)
class _Read:
    """What one read found after a cursor, from the stream or the shared ring (`TailRead`)."""

    start: Cursor
    entries: Sequence[Item]
    missed: int
    newest: Cursor


@dataclass
class _Pending:
    """A loss to report before the next frame: from `after`, this many frames."""

    after: Cursor
    missed: int


class DetectionsServicer(control_pb2_grpc.DetectionsServicer):
    def __init__(
        self,
        tail: Tail[FrameMetadata],
        settings: SubscribeSettings,
        metrics: SubscribeMetrics,
        stopping: threading.Event,
    ) -> None:
        self._tail = tail
        self._settings = settings
        self._metrics = metrics
        self._stopping = stopping
        self._slots = threading.BoundedSemaphore(settings.max_subscribers)
        self._frames = metrics.events.labels("frame")
        # The stream's shared reader (None: fanout_entries is 0, each subscription reads it).
        self.shared: SharedTail[FrameMetadata, Item] | None = None
        if settings.fanout_entries > 0:
            options = ReaderOptions(
                capacity=settings.fanout_entries,
                read_count=settings.read_count,
                block_ms=settings.block_ms,
            )
            self.shared = SharedTails(_prepare, options, stopping).of(tail)

    def Subscribe(  # noqa: N802 (the RPC's name)
        self, request: SubscribeRequest, context: grpc.ServicerContext
    ) -> Iterator[DetectionEvent]:
        query = parse_query(request)
        if not self._slots.acquire(blocking=False):
            self._metrics.refused.inc()
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{self._settings.max_subscribers} subscriptions are open already "
                "(subscribe.max_subscribers)",
            )
        self._metrics.subscribers.inc()
        slot = _Slot(self._slots, self._metrics)
        # Given back the moment the call ends (a cancel included), not when the handler next
        # wakes from its read: a client that reconnects at once finds its slot free.
        if not context.add_callback(slot.release):
            slot.release()
        try:
            yield from self._follow(query, context)
        finally:
            slot.release()

    def _follow(self, query: Query, context: grpc.ServicerContext) -> Iterator[DetectionEvent]:
        cursor = self._start(query)
        if self.shared is not None:
            self.shared.attach()
        try:
            yield from self._from(cursor, query, context)
        finally:
            if self.shared is not None:
                self.shared.detach()

    def _from(
        self, cursor: Cursor, query: Query, context: grpc.ServicerContext
    ) -> Iterator[DetectionEvent]:
        pending: _Pending | None = None  # a loss not reported yet
        last: Cursor | None = None  # at a stop: the newest entry then, delivered before the end
        while context.is_active():
            if self._stopping.is_set() and last is None:
                # What the stream held when the stop came still goes out (within the server's
                # grace period): a run that ends after its last frame loses no subscriber's.
                last = self._call(self._tail.window).newest
            if last is not None and cursor.number >= last.number:
                raise UnavailableError(f"the control service is stopping; {RESUME_HINT}")
            read = self._read(cursor, context, wait=last is None)
            if last is not None and not read.entries and not read.missed:
                raise UnavailableError(f"the control service is stopping; {RESUME_HINT}")
            if read.missed:
                pending = _add(pending, cursor, read.missed)
                self._metrics.missed.labels("trimmed").inc(read.missed)
                cursor = read.start
            behind = read.newest.number - cursor.number
            if behind > self._settings.max_behind:
                pending = _add(pending, cursor, behind)
                self._metrics.missed.labels("behind").inc(behind)
                cursor = read.newest
                continue
            for entry, ready in read.entries:
                if pending is not None:
                    yield self._gap(pending, before=cursor, resumed_at=entry.cursor)
                    pending = None
                cursor = entry.cursor
                message = entry.message
                if message is None:
                    self._metrics.undecodable.inc()
                    log.warning("skipped %s of %s: %s", cursor.id, self._tail.key, entry.problem)
                    continue
                frame = query.select(message)
                if frame is not None:
                    self._frames.inc()
                    if frame is message and ready is not None:
                        yield ready  # the one event every unfiltered subscriber gets
                    else:
                        yield DetectionEvent(position=position_text(cursor), frame=frame)

    def _start(self, query: Query) -> Cursor:
        if query.after is not None:
            return query.after
        window = self._call(self._tail.window)
        return window.oldest if query.from_oldest else window.newest

    def _read(self, cursor: Cursor, context: grpc.ServicerContext, *, wait: bool = True) -> _Read:
        wait_ms = self._settings.block_ms if wait else 0
        remaining = context.time_remaining()
        if remaining is not None:  # a deadline: wake before it to end the call in time
            wait_ms = max(1, min(wait_ms, int(remaining * 1000)))
        count = self._settings.read_count
        if self.shared is not None:
            got = self.shared.read(cursor, count, wait_ms / 1000)
            if got is not None:
                items, newest = got
                return _Read(cursor, items, 0, newest)
        read = self._call(lambda: self._tail.read(cursor, count, wait_ms))
        entries = [(entry, None) for entry in read.entries]
        return _Read(read.start, entries, read.missed, read.newest)

    def _gap(self, pending: _Pending, *, before: Cursor, resumed_at: Cursor) -> DetectionEvent:
        """The Gap before the frame at `resumed_at`; its position (`before`) resumes there."""
        self._metrics.events.labels("gap").inc()
        gap = Gap(
            after=position_text(pending.after),
            resumed_at=position_text(resumed_at),
            missed=pending.missed,
        )
        return DetectionEvent(position=position_text(before), gap=gap)

    @staticmethod
    def _call(read: Callable[[], T]) -> T:
        try:
            return read()
        except BusUnavailableError as e:
            raise UnavailableError(f"the bus does not answer ({e}); {RESUME_HINT}") from e


class _Slot:
    """One subscription's place under max_subscribers, given back once."""

    def __init__(self, slots: threading.BoundedSemaphore, metrics: SubscribeMetrics) -> None:
        self._slots = slots
        self._metrics = metrics
        self._lock = threading.Lock()
        self._held = True

    def release(self) -> None:
        with self._lock:
            if not self._held:
                return
            self._held = False
        self._metrics.subscribers.dec()
        self._slots.release()


def _prepare(entry: TailEntry[FrameMetadata]) -> Item:
    """An entry as the shared reader keeps it: with the event of an unfiltered subscriber,
    whose frame stands for the decoded message (one copy of it held, not two)."""
    if entry.message is None:
        return entry, None
    event = DetectionEvent(position=position_text(entry.cursor), frame=entry.message)
    return TailEntry(entry.cursor, event.frame, entry.published_ns, entry.problem), event


def _add(pending: _Pending | None, after: Cursor, missed: int) -> _Pending:
    if pending is None:
        return _Pending(after, missed)
    return _Pending(pending.after, pending.missed + missed)
