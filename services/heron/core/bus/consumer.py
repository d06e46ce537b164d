"""Typed consumption of one stream by one member of a consumer group.

Delivery is at-least-once: a message stays pending on its consumer until acknowledged; when
that consumer dies, another one takes the message over (XAUTOCLAIM) once it has been idle for
`consumer.min_idle_ms`. Entries that cannot be decoded, and entries delivered more than
`consumer.max_deliveries` times, go to the dead-letter stream with the reason and are then
acknowledged, so one bad message cannot block a group.
"""

from __future__ import annotations

import functools
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import redis

from heron.core import streams
from heron.core.bus import codec, replies
from heron.core.bus.codec import M
from heron.core.bus.connection import Reconnector
from heron.core.bus.deadletter import Rejected, dead_letter, reason_text, to_dead_letter
from heron.core.bus.errors import (
    BackpressureError,
    DeadLetterReason,
    ReplyError,
    UndecodableMessageError,
)
from heron.core.bus.metrics import BusMetrics, default_metrics
from heron.core.bus.publisher import RedisPublisher, check_message_class
from heron.core.bus.replies import RawEntry
from heron.core.bus.settings import BusSettings
from heron.core.streams import StreamName
from heron.v1.bus_pb2 import DeadLetter

log = logging.getLogger(__name__)

T = TypeVar("T")

SCAN_DONE = "0-0"  # XAUTOCLAIM's cursor once it has looked at the whole pending list


@dataclass(frozen=True)
class Delivery(Generic[M]):
    """One message handed to a consumer; acknowledge it with the consumer's `ack` when done."""

    id: str
    message: M
    deliveries: int  # 1 on first delivery; more after a reclaim
    published_ns: int | None  # publish time, when the publisher stamped one


def check_name(kind: str, value: str) -> str:
    if not value or not value.isprintable() or any(c.isspace() for c in value):
        raise ValueError(f"{kind}: expected a non-empty name without spaces, got {value!r}")
    return value


class _LetterBox(Protocol):
    """The dead-letter stream's publisher, on either transport."""

    def publish(self, message: DeadLetter) -> str: ...

    def publish_many(self, messages: Sequence[DeadLetter]) -> list[str]: ...


class DeadLettering(ABC, Generic[M]):
    """What both transports' consumers share: their stream's key and `reject`, which
    dead-letters a delivery, then acknowledges it with the consumer's own `ack`."""

    stream: StreamName
    group: str
    _dead_letters: _LetterBox
    _metrics: BusMetrics

    @property
    def key(self) -> str:
        return self.stream.key

    @abstractmethod
    def ack(self, deliveries: Iterable[Delivery[M]]) -> int: ...

    def reject(
        self,
        delivery: Delivery[M],
        reason: str,
        detail: str = "",
        *,
        payload: bytes | None = None,
        type_name: str | None = None,
        ack: bool = True,
    ) -> str:
        """Dead-letter a delivery the stage cannot use, then acknowledge it; returns the
        DeadLetter's reason text (`reason`, then `detail`, unless `detail` starts with it).

        `payload` and `type_name` default to the delivery's message and the stream's type; a
        stage that refuses one part of a message (a frame of a muxer batch) names that part.
        `ack=False` leaves the acknowledgement to the caller, for a delivery that still has
        other parts to dead-letter. Raises BackpressureError when the dead-letter stream is
        full: nothing was acknowledged, so the caller can try again.
        """
        text = reason_text(reason, detail)
        letter = dead_letter(
            stream=self.key,
            message_id=delivery.id,
            group=self.group,
            type_name=self.stream.message_type if type_name is None else type_name,
            reason=text,
            payload=delivery.message.SerializeToString() if payload is None else payload,
            deliveries=delivery.deliveries,
        )
        self._dead_letters.publish(letter)
        if ack:
            self.ack([delivery])
        self._metrics.dead_lettered.labels(topic=self.key, group=self.group, reason=reason).inc()
        log.warning("dead-lettered %s of %r: %s", delivery.id, self.key, text)
        return text


class RedisConsumer(DeadLettering[M]):
    """Reads `message_class` messages from `stream` as member `name` of `group`.

    One consumer per thread: it keeps a reclaim cursor. `name` must be unique within the
    group among live processes; a restarted process may reuse its old name.
    """

    def __init__(
        self,
        client: redis.Redis,
        stream: StreamName,
        message_class: type[M],
        *,
        group: str,
        name: str,
        settings: BusSettings | None = None,
        metrics: BusMetrics | None = None,
    ) -> None:
        check_message_class(stream, message_class)
        self.stream = stream
        self.message_class = message_class
        self.group = check_name("group", group)
        self.name = check_name("consumer name", name)
        self._client = client
        self._settings = settings or BusSettings()
        self._opts = self._settings.consumer
        self._metrics = metrics or default_metrics()
        self._reconnector = Reconnector(
            self._settings.backoff, self._metrics, stream=stream.key, role="consumer"
        )
        self._dead_letters = RedisPublisher(
            client,
            streams.dead_letter(stream),
            DeadLetter,
            settings=self._settings,
            metrics=self._metrics,
        )
        self._group_ready = False
        self._cursor = SCAN_DONE
        self._next_reclaim = 0.0  # monotonic time of the next look for abandoned messages
        labels = {"topic": stream.key, "group": group}
        self._consumed = self._metrics.consumed.labels(**labels)
        self._reclaimed = self._metrics.reclaimed.labels(**labels)
        self._acked = self._metrics.acked.labels(**labels)
        self._latency = self._metrics.delivery_latency.labels(**labels)

    def ensure_group(self) -> bool:
        """Create the group (and the stream) unless it exists; True when it was created."""
        created = self._reconnector.call(self._create_group)
        self._group_ready = True
        return created

    def read(self, count: int | None = None, block_ms: int | None = None) -> list[Delivery[M]]:
        """Up to `count` messages: abandoned ones first, then new ones (waiting `block_ms`).

        Returns [] when nothing arrived in time. Dead-lettered entries are not returned.
        """
        count = self._opts.batch_size if count is None else count
        block_ms = self._opts.block_ms if block_ms is None else block_ms
        if count < 1 or block_ms < 0:
            raise ValueError(
                f"read: expected count >= 1 and block_ms >= 0, got count={count}, "
                f"block_ms={block_ms}"
            )
        if not self._group_ready:
            self.ensure_group()
        raw: list[tuple[RawEntry, int]] = []
        if time.monotonic() >= self._next_reclaim or self._cursor != SCAN_DONE:
            raw += self._call(functools.partial(self._reclaim, count))
        if len(raw) < count:
            # Do not wait for new messages when reclaimed ones are already at hand.
            wait = None if raw or block_ms == 0 else block_ms
            fresh = self._call(functools.partial(self._read_new, count - len(raw), wait))
            raw += [(entry, 1) for entry in fresh]
        return self._accept(raw)

    def ack(self, deliveries: Iterable[Delivery[M]]) -> int:
        """Acknowledge processed messages; return how many were still pending."""
        ids = [d.id for d in deliveries]
        if not ids:
            return 0
        acked = self._reconnector.call(
            functools.partial(self._client.xack, self.key, self.group, *ids)
        )
        self._acked.inc(acked)
        return acked

    def _call(self, op: Callable[[], T]) -> T:
        """`op` with reconnects; recreates the group if Redis lost it, then tries once more."""

        def attempt() -> T:
            try:
                return op()
            except redis.ResponseError as e:
                if not str(e).startswith("NOGROUP"):
                    raise
                # A Redis restarted without persistence (or a deleted stream) lost the group.
                log.warning("group %r of %r is gone; creating it again", self.group, self.key)
                self._create_group()
                return op()

        return self._reconnector.call(attempt)

    def _create_group(self) -> bool:
        try:
            self._client.xgroup_create(self.key, self.group, id=self._opts.start_id, mkstream=True)
        except redis.ResponseError as e:
            if str(e).startswith("BUSYGROUP"):
                return False
            raise
        return True

    def _read_new(self, count: int, block_ms: int | None) -> list[RawEntry]:
        reply = self._client.xreadgroup(
            self.group, self.name, {self.key: ">"}, count=count, block=block_ms
        )
        return replies.xreadgroup_entries(reply)

    def _reclaim(self, count: int) -> list[tuple[RawEntry, int]]:
        """Take over messages idle on any consumer (a dead one, or this one before a restart)."""
        reply = self._client.xautoclaim(
            self.key,
            self.group,
            self.name,
            self._opts.min_idle_ms,
            start_id=self._cursor,
            count=count,
        )
        self._cursor, claimed, trimmed = replies.xautoclaim_reply(reply)
        if self._cursor == SCAN_DONE:
            self._next_reclaim = time.monotonic() + self._opts.reclaim_interval_ms / 1000
        if trimmed:
            log.info("%d pending entries of %r were trimmed before reclaim", len(trimmed), self.key)
        if not claimed:
            return []
        counts = self._delivery_counts([e.id for e in claimed])
        self._reclaimed.inc(len(claimed))
        # An entry missing from the counts was acknowledged meanwhile (its slow owner finished).
        return [(e, counts[e.id]) for e in claimed if e.id in counts]

    def _delivery_counts(self, ids: list[str]) -> dict[str, int]:
        pipe = self._client.pipeline(transaction=False)
        for entry_id in ids:
            pipe.xpending_range(self.key, self.group, entry_id, entry_id, 1, self.name)
        counts: dict[str, int] = {}
        for reply in pipe.execute():
            for row in reply:
                if not isinstance(row, dict) or not isinstance(row.get("times_delivered"), int):
                    raise ReplyError(f"XPENDING: expected times_delivered, got {row!r:.80}")
                counts[replies.text(row["message_id"], "XPENDING")] = row["times_delivered"]
        return counts

    def _accept(self, raw: list[tuple[RawEntry, int]]) -> list[Delivery[M]]:
        good: list[Delivery[M]] = []
        rejected: list[Rejected] = []
        limit = self._opts.max_deliveries
        now_ns = time.time_ns()
        for entry, deliveries in raw:
            if deliveries > limit:
                detail = f"delivered {deliveries} times, more than max_deliveries={limit}"
                rejected.append(
                    Rejected(entry, deliveries, DeadLetterReason.POISON, f"poison: {detail}")
                )
                continue
            try:
                decoded = codec.decode(entry.fields, self.message_class)
            except UndecodableMessageError as e:
                rejected.append(Rejected(entry, deliveries, e.reason, str(e)))
                continue
            good.append(Delivery(entry.id, decoded.message, deliveries, decoded.published_ns))
            if deliveries == 1 and decoded.published_ns is not None:
                seconds = max(0.0, (now_ns - decoded.published_ns) / 1e9)
                self._latency.observe(seconds, {"entry": entry.id})  # exemplar: which message
        if rejected:
            self._dead_letter(rejected)
        self._consumed.inc(len(good))
        return good

    def _dead_letter(self, rejected: list[Rejected]) -> None:
        """Move entries to the dead-letter stream, then acknowledge them on this one."""
        letters = [
            to_dead_letter(
                r,
                stream=self.key,
                group=self.group,
                type_name=self.stream.message_type,
            )
            for r in rejected
        ]
        try:
            self._dead_letters.publish_many(letters)
        except BackpressureError as e:
            # Left pending: they come back after min_idle_ms and are dead-lettered then.
            log.error("cannot dead-letter %d entries of %r: %s", len(rejected), self.key, e)
            return
        ids = [r.entry.id for r in rejected]
        self._reconnector.call(functools.partial(self._client.xack, self.key, self.group, *ids))
        for r in rejected:
            self._metrics.dead_lettered.labels(
                topic=self.key, group=self.group, reason=r.reason.value
            ).inc()
            log.warning("dead-lettered %s of %r: %s", r.entry.id, self.key, r.detail)
