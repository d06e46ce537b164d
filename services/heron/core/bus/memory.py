"""The bus inside one process: the streams of `heron run --in-process`.

Every stage runs as a thread of one process and shares one `MemoryStreams`; each builds its
`MemoryBus` from it, as a service on Redis builds a `RedisBus`. The semantics are Redis
streams' as the stages use them: entry ids in Redis's `ms-seq` form, consumer groups with a
last-delivered id and a pending list, acknowledgement, drop-oldest trimming of frame streams,
keep-unread bounds with backpressure on metadata streams, dead letters. Messages are stored
serialized, so no two stages ever share a mutable protobuf object.

What it leaves out is what only a crash needs: reclaiming another consumer's pending entries
and the poison count. In one process a stage that fails ends the whole run (as a GStreamer
element's error ends deepstream-app), so nothing is left to take over.
"""

from __future__ import annotations

import bisect
import fnmatch
import functools
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic

from google.protobuf.message import DecodeError
from prometheus_client import CollectorRegistry

from heron.core import streams as stream_names
from heron.core.bus.codec import M
from heron.core.bus.consumer import DeadLettering, Delivery, check_name
from heron.core.bus.errors import BackpressureError
from heron.core.bus.ids import EntryId, id_text, parse_id
from heron.core.bus.metrics import BusMetrics, default_metrics
from heron.core.bus.publisher import check_message_class
from heron.core.bus.settings import BusSettings
from heron.core.bus.tail import Cursor, TailRead, Window, numbered
from heron.core.streams import Retention, StreamName
from heron.v1.bus_pb2 import DeadLetter

log = logging.getLogger(__name__)


@dataclass
class _Group:
    last_delivered: EntryId
    pending: dict[str, str] = field(default_factory=dict)  # entry id -> consumer, oldest first


@dataclass
class _Stream:
    ids: list[EntryId] = field(default_factory=list)
    entries: list[tuple[bytes, int]] = field(default_factory=list)  # payload, published ns
    added: int = 0
    last: EntryId = (0, 0)  # the newest id ever given, as XINFO's last-generated-id
    groups: dict[str, _Group] = field(default_factory=dict)

    def after(self, entry_id: EntryId) -> int:
        """Index of the first entry newer than `entry_id`."""
        return bisect.bisect_right(self.ids, entry_id)

    def drop_front(self, count: int) -> None:
        del self.ids[:count]
        del self.entries[:count]

    def needed_floor(self) -> EntryId | None:
        """The oldest id some group still needs (as the Redis bus's Lua script computes it);
        None without groups: nobody has read the stream yet, so it keeps everything."""
        floor: EntryId | None = None
        for group in self.groups.values():
            if group.pending:
                need = parse_id(next(iter(group.pending)))
            else:
                need = (group.last_delivered[0], group.last_delivered[1] + 1)
            floor = need if floor is None or need < floor else floor
        return floor


class MemoryStreams:
    """Every stream of one process, behind one lock; waiting readers and writers share its
    condition (a publish wakes readers, an acknowledgement wakes writers waiting for room)."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self._streams: dict[str, _Stream] = {}
        self._last: EntryId = (0, 0)

    def stream(self, key: str) -> _Stream:
        """The stream at `key`, created empty (callers hold `changed`)."""
        return self._streams.setdefault(key, _Stream())

    def get(self, key: str) -> _Stream | None:
        return self._streams.get(key)

    def keys(self, pattern: str) -> list[str]:
        """Stream keys matching a glob, as Redis's MATCH reads one."""
        return [key for key in self._streams if fnmatch.fnmatchcase(key, pattern)]

    def next_id(self) -> EntryId:
        """A new id above every earlier one, from the wall clock as Redis makes them."""
        ms = time.time_ns() // 1_000_000
        last_ms, last_seq = self._last
        self._last = (ms, 0) if ms > last_ms else (last_ms, last_seq + 1)
        return self._last


class MemoryPublisher(Generic[M]):
    """`Publisher` on a `MemoryStreams` stream, with the stream's retention rule."""

    def __init__(
        self,
        streams: MemoryStreams,
        stream: StreamName,
        message_class: type[M],
        settings: BusSettings,
        metrics: BusMetrics,
    ) -> None:
        check_message_class(stream, message_class)
        self.stream = stream
        self.message_class = message_class
        self._streams = streams
        self._retention = settings.retention
        self._metrics = metrics
        labels = {"topic": stream.key}
        self._published = metrics.published.labels(**labels)
        self._dropped = metrics.dropped.labels(**labels)
        self._trimmed = metrics.trimmed.labels(**labels)
        self._waited = metrics.backpressure_wait.labels(**labels)
        self._timeouts = metrics.backpressure_timeouts.labels(**labels)

    @property
    def key(self) -> str:
        return self.stream.key

    def publish(self, message: M) -> str:
        return self.publish_many([message])[0]

    def publish_many(self, messages: Sequence[M]) -> list[str]:
        payloads = [self._checked(m).SerializeToString() for m in messages]
        if not payloads:
            return []
        if self.stream.retention is Retention.DROP_OLDEST:
            return self._append_drop_oldest(payloads)
        return self._append_keep_unread(payloads)

    def trim_acked(self) -> int:
        with self._streams.changed:
            trimmed = self._trim_acked(self._streams.stream(self.key))
        self._trimmed.inc(trimmed)
        return trimmed

    def _checked(self, message: M) -> M:
        if not isinstance(message, self.message_class):
            check_message_class(self.stream, type(message))  # raises, naming both types
        return message

    def _append(self, stream: _Stream, payloads: list[bytes]) -> list[str]:
        now_ns = time.time_ns()
        ids = [self._streams.next_id() for _ in payloads]
        stream.ids += ids
        stream.entries += [(p, now_ns) for p in payloads]
        stream.added += len(payloads)
        stream.last = ids[-1]
        self._published.inc(len(payloads))
        self._streams.changed.notify_all()
        return [id_text(i) for i in ids]

    def _append_drop_oldest(self, payloads: list[bytes]) -> list[str]:
        with self._streams.changed:
            stream = self._streams.stream(self.key)
            ids = self._append(stream, payloads)
            excess = len(stream.ids) - self._retention.drop_oldest_max_len
            if excess > 0:
                # As on Redis: per group, the trimmed entries it had not been given yet.
                for name, group in stream.groups.items():
                    lost = excess - min(stream.after(group.last_delivered), excess)
                    if lost:
                        self._metrics.dropped_unread.labels(topic=self.key, group=name).inc(lost)
                stream.drop_front(excess)
                self._dropped.inc(excess)
        return ids

    def _append_keep_unread(self, payloads: list[bytes]) -> list[str]:
        limit = self._retention.keep_unread_max_len
        timeout = self._retention.backpressure_timeout_s
        started = time.monotonic()
        ids: list[str] = []
        with self._streams.changed:
            stream = self._streams.stream(self.key)
            while len(ids) < len(payloads):
                # As on Redis: acknowledged entries stay until room is needed, so a reader in
                # no group (a gRPC subscriber, heron.core.bus.tail) can still resume over them.
                if len(stream.ids) + len(payloads) - len(ids) > limit:
                    self._trimmed.inc(self._trim_acked(stream))
                room = limit - len(stream.ids)
                if room > 0:
                    ids += self._append(stream, payloads[len(ids) : len(ids) + room])
                    continue
                waited = time.monotonic() - started
                if waited >= timeout:
                    self._timeouts.inc()
                    raise BackpressureError(self.key, limit, waited, ids, len(payloads) - len(ids))
                # Woken by an acknowledgement; the poll bound keeps the wait metric honest.
                pause = min(self._retention.backpressure_poll_s, timeout - waited)
                self._streams.changed.wait(pause)
                self._waited.inc(pause)
        return ids

    @staticmethod
    def _trim_acked(stream: _Stream) -> int:
        floor = stream.needed_floor()
        if floor is None:
            return 0
        done = bisect.bisect_left(stream.ids, floor)
        stream.drop_front(done)
        return done


class MemoryConsumer(DeadLettering[M]):
    """`Consumer` on a `MemoryStreams` stream: new entries in order, pending until acked."""

    def __init__(
        self,
        streams: MemoryStreams,
        stream: StreamName,
        message_class: type[M],
        *,
        group: str,
        name: str,
        settings: BusSettings,
        metrics: BusMetrics,
    ) -> None:
        check_message_class(stream, message_class)
        self.stream = stream
        self.message_class = message_class
        self.group = check_name("group", group)
        self.name = check_name("consumer name", name)
        self._streams = streams
        self._opts = settings.consumer
        self._metrics = metrics
        self._dead_letters = MemoryPublisher(
            streams, stream_names.dead_letter(stream), DeadLetter, settings, metrics
        )
        labels = {"topic": stream.key, "group": group}
        self._consumed = metrics.consumed.labels(**labels)
        self._acked = metrics.acked.labels(**labels)
        self._latency = metrics.delivery_latency.labels(**labels)

    def ensure_group(self) -> bool:
        with self._streams.changed:
            return self._ensure_group(self._streams.stream(self.key))

    def read(self, count: int | None = None, block_ms: int | None = None) -> list[Delivery[M]]:
        count = self._opts.batch_size if count is None else count
        block_ms = self._opts.block_ms if block_ms is None else block_ms
        if count < 1 or block_ms < 0:
            raise ValueError(
                f"read: expected count >= 1 and block_ms >= 0, got count={count}, "
                f"block_ms={block_ms}"
            )
        deadline = time.monotonic() + block_ms / 1000
        with self._streams.changed:
            stream = self._streams.stream(self.key)
            self._ensure_group(stream)
            group = stream.groups[self.group]
            while True:
                start = stream.after(group.last_delivered)
                end = start + count
                taken = list(zip(stream.ids[start:end], stream.entries[start:end], strict=True))
                left = deadline - time.monotonic()
                if taken or left <= 0:
                    break
                self._streams.changed.wait(left)
            for entry_id, _ in taken:
                group.pending[id_text(entry_id)] = self.name
            if taken:
                group.last_delivered = taken[-1][0]
        return self._deliveries(taken)

    def ack(self, deliveries: Iterable[Delivery[M]]) -> int:
        ids = [d.id for d in deliveries]
        if not ids:
            return 0
        with self._streams.changed:
            pending = self._streams.stream(self.key).groups[self.group].pending
            acked = sum(1 for i in ids if pending.pop(i, None) is not None)
            self._streams.changed.notify_all()  # a writer may be waiting for room
        self._acked.inc(acked)
        return acked

    def _ensure_group(self, stream: _Stream) -> bool:
        if self.group in stream.groups:
            return False
        start = (0, 0) if self._opts.start_id == "0" or not stream.ids else stream.ids[-1]
        stream.groups[self.group] = _Group(last_delivered=start)
        return True

    def _deliveries(self, taken: list[tuple[EntryId, tuple[bytes, int]]]) -> list[Delivery[M]]:
        now_ns = time.time_ns()
        out: list[Delivery[M]] = []
        for entry_id, (payload, published_ns) in taken:
            message = self.message_class.FromString(payload)
            entry = id_text(entry_id)
            out.append(Delivery(entry, message, 1, published_ns))
            self._latency.observe(max(0.0, (now_ns - published_ns) / 1e9), {"entry": entry})
        self._consumed.inc(len(out))
        return out


class MemoryTail(Generic[M]):
    """`Tail` of a `MemoryStreams` stream: the same windows and numbers as on Redis."""

    def __init__(self, streams: MemoryStreams, stream: StreamName, message_class: type[M]) -> None:
        check_message_class(stream, message_class)
        self.stream = stream
        self.message_class = message_class
        self._streams = streams

    @property
    def key(self) -> str:
        return self.stream.key

    def window(self) -> Window:
        with self._streams.changed:
            return self._window()

    def read(self, after: Cursor, count: int, block_ms: int = 0) -> TailRead[M]:
        deadline = time.monotonic() + block_ms / 1000
        with self._streams.changed:
            while True:
                window = self._window()
                start, missed = window.place(after)
                raw = self._after(start, count)
                left = deadline - time.monotonic()
                if raw or missed or left <= 0:
                    break
                self._streams.changed.wait(left)
        return TailRead(start, numbered(start, raw, self._decode), missed, window.newest)

    def _window(self) -> Window:
        stream = self._streams.get(self.key)
        if stream is None:
            return Window(0, 0, None, "0-0")
        first = id_text(stream.ids[0]) if stream.ids else None
        return Window(stream.added, len(stream.ids), first, id_text(stream.last))

    def _after(self, start: Cursor, count: int) -> list[tuple[str, tuple[bytes, int]]]:
        stream = self._streams.get(self.key)
        if stream is None:
            return []
        i = stream.after(start.key)
        return [
            (id_text(k), e)
            for k, e in zip(stream.ids[i : i + count], stream.entries[i : i + count], strict=True)
        ]

    def _decode(self, entry: tuple[bytes, int]) -> tuple[M | None, int | None, str]:
        payload, published_ns = entry
        try:
            return self.message_class.FromString(payload), published_ns, ""
        except DecodeError as e:
            return None, published_ns, f"bad_protobuf: {e}"


class MemoryBus:
    """`Bus` on a process's `MemoryStreams`: what a stage gets under `heron run --in-process`."""

    def __init__(
        self,
        streams: MemoryStreams,
        settings: BusSettings | None = None,
        *,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.streams = streams
        self.settings = settings or BusSettings()
        self.metrics = default_metrics() if registry is None else BusMetrics(registry)

    def publisher(self, stream: StreamName, message_class: type[M]) -> MemoryPublisher[M]:
        return MemoryPublisher(self.streams, stream, message_class, self.settings, self.metrics)

    def consumer(
        self, stream: StreamName, message_class: type[M], group: str, name: str | None = None
    ) -> MemoryConsumer[M]:
        self.metrics.watch_group(
            stream.key, group, functools.partial(self.backlog, stream.key, group)
        )
        return MemoryConsumer(
            self.streams,
            stream,
            message_class,
            group=group,
            name=name or f"{group}-{threading.get_ident()}",
            settings=self.settings,
            metrics=self.metrics,
        )

    def tail(self, stream: StreamName, message_class: type[M]) -> MemoryTail[M]:
        return MemoryTail(self.streams, stream, message_class)

    def outstanding(self, key: str, group: str, count_up_to: int) -> int:
        with self.streams.changed:
            stream = self.streams.get(key)
            if stream is None:
                return 0
            if group not in stream.groups:
                return len(stream.ids)
        backlog = self.backlog(key, group)
        return 0 if backlog is None else sum(backlog)  # known exactly: no need to stop early

    def backlog(self, key: str, group: str) -> tuple[int, int] | None:
        """(lag, pending) of `group` on `key`, as groups.group_backlog reads it from Redis."""
        with self.streams.changed:
            stream = self.streams.get(key)
            state = None if stream is None else stream.groups.get(group)
            if stream is None or state is None:
                return None
            return len(stream.ids) - stream.after(state.last_delivered), len(state.pending)

    def entries_added(self, key: str) -> int:
        with self.streams.changed:
            stream = self.streams.get(key)
            return 0 if stream is None else stream.added

    def groups_caught_up(self, key: str) -> dict[str, bool]:
        with self.streams.changed:
            stream = self.streams.get(key)
            if stream is None:
                return {}
            last = stream.ids[-1] if stream.ids else None
            return {
                name: not g.pending and (last is None or g.last_delivered >= last)
                for name, g in stream.groups.items()
            }

    def stream_keys(self, pattern: str) -> list[str]:
        with self.streams.changed:
            return self.streams.keys(pattern)

    def newest_id(self, key: str) -> str | None:
        with self.streams.changed:
            stream = self.streams.get(key)
            return id_text(stream.ids[-1]) if stream is not None and stream.ids else None

    def unfinished_ids(self, key: str, group: str, after: str, count_up_to: int) -> list[str]:
        with self.streams.changed:
            stream = self.streams.get(key)
            if stream is None:
                return []
            first = stream.after(parse_id(after))
            state = stream.groups.get(group)
            if state is None:  # nobody has read the stream: every entry is unread
                return [id_text(i) for i in stream.ids[first : first + count_up_to]]
            pending = [i for i in state.pending if parse_id(i) > parse_id(after)][:count_up_to]
            start = max(first, stream.after(state.last_delivered))
            undelivered = [id_text(i) for i in stream.ids[start : start + count_up_to]]
        return sorted({*pending, *undelivered}, key=parse_id)

    def unfinished(self, stream: StreamName, message_class: type[M], count_up_to: int) -> list[M]:
        with self.streams.changed:
            state = self.streams.get(stream.key)
            if state is None:
                return []
            wanted = _unfinished_indices(state, count_up_to)
            payloads = [state.entries[i][0] for i in sorted(wanted)]
        messages: list[M] = []
        for payload in payloads:
            try:
                messages.append(message_class.FromString(payload))
            except DecodeError:
                continue
        return messages

    def newest(self, stream: StreamName, message_class: type[M]) -> M | None:
        with self.streams.changed:
            state = self.streams.get(stream.key)
            if state is None or not state.entries:
                return None
            payload = state.entries[-1][0]
        try:
            return message_class.FromString(payload)
        except DecodeError:
            return None

    def ping(self) -> bool:
        return True  # the process's own memory

    def close(self) -> None:
        """Nothing to release: the streams outlive each stage's bus, as Redis does."""


def _unfinished_indices(stream: _Stream, count_up_to: int) -> set[int]:
    """Indices of the entries a group of `stream` has not finished (every entry before a
    group exists), as groups.unfinished_entries reads them from Redis."""
    if not stream.groups:
        return set(range(min(len(stream.ids), count_up_to)))
    wanted: set[int] = set()
    for group in stream.groups.values():
        for entry_id in list(group.pending)[:count_up_to]:
            parsed = parse_id(entry_id)
            i = bisect.bisect_left(stream.ids, parsed)
            if i < len(stream.ids) and stream.ids[i] == parsed:
                wanted.add(i)  # else trimmed: nothing left to return
        first = stream.after(group.last_delivered)
        wanted.update(range(first, min(len(stream.ids), first + count_up_to)))
    return wanted


class MemoryTransport:
    """Every stage of one process on the same `MemoryStreams`."""

    name = "in-process"

    def __init__(self, streams: MemoryStreams | None = None) -> None:
        self.streams = streams or MemoryStreams()

    def bus(self, settings: BusSettings, registry: CollectorRegistry | None = None) -> MemoryBus:
        return MemoryBus(self.streams, settings, registry=registry)
