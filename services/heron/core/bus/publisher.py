"""Typed publishing of one protobuf message type to one stream, under its retention rule."""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import Generic

import redis
from google.protobuf.message import Message

from heron.core.bus import codec
from heron.core.bus.codec import M
from heron.core.bus.connection import Reconnector
from heron.core.bus.errors import BackpressureError, StreamTypeError
from heron.core.bus.metrics import BusMetrics, default_metrics
from heron.core.bus.retention import DropOldestScript, KeepUnreadScripts
from heron.core.bus.settings import BusSettings
from heron.core.streams import Retention, StreamName

# Bounds the work of one Lua call so a huge batch cannot stall Redis for other clients.
MAX_ENTRIES_PER_SCRIPT_CALL = 1000


def check_message_class(stream: StreamName, message_class: type[Message]) -> None:
    """Refuse a class that is not the stream's message type."""
    got = codec.type_name(message_class)
    if got != stream.message_type:
        raise StreamTypeError(
            f"stream {stream.key!r} carries {stream.message_type}, got message class {got}"
        )


class RedisPublisher(Generic[M]):
    """Publishes `message_class` messages to `stream`.

    Frame streams (DROP_OLDEST) are trimmed to `retention.drop_oldest_max_len` and the drops
    counted: all of them (heron_bus_dropped_total), and per consumer group those it had not
    been given yet (heron_bus_dropped_unread_total). Metadata/event streams (KEEP_UNREAD) lose
    only entries every consumer group has acknowledged; when full, publish waits for room and
    raises BackpressureError after `retention.backpressure_timeout_s`. A publish retried after
    a lost reply may add the message twice (at-least-once).
    """

    def __init__(
        self,
        client: redis.Redis,
        stream: StreamName,
        message_class: type[M],
        *,
        settings: BusSettings | None = None,
        metrics: BusMetrics | None = None,
    ) -> None:
        check_message_class(stream, message_class)
        self.stream = stream
        self.message_class = message_class
        self._client = client
        self._settings = settings or BusSettings()
        self._metrics = metrics or default_metrics()
        self._reconnector = Reconnector(
            self._settings.backoff, self._metrics, stream=stream.key, role="publisher"
        )
        self._scripts = KeepUnreadScripts(client)
        self._drop_oldest = DropOldestScript(client)
        labels = {"topic": stream.key}
        self._published = self._metrics.published.labels(**labels)
        self._dropped = self._metrics.dropped.labels(**labels)
        self._dropped_unread = self._metrics.dropped_unread
        self._trimmed = self._metrics.trimmed.labels(**labels)
        self._waited = self._metrics.backpressure_wait.labels(**labels)
        self._timeouts = self._metrics.backpressure_timeouts.labels(**labels)

    def publish(self, message: M) -> str:
        """Add one message; return its stream id."""
        return self.publish_many([message])[0]

    def publish_many(self, messages: Sequence[M]) -> list[str]:
        """Add messages in one round trip (per chunk); return their ids in order."""
        entries = [codec.encode(self._checked(m)) for m in messages]
        if not entries:
            return []
        if self.stream.retention is Retention.DROP_OLDEST:
            return self._append_drop_oldest(entries)
        return self._append_keep_unread(entries)

    def trim_acked(self) -> int:
        """Keep-unread streams: trim what every group acknowledged now, not only when full."""
        trimmed = self._reconnector.call(functools.partial(self._scripts.trim_acked, self.key))
        self._trimmed.inc(trimmed)
        return trimmed

    @property
    def key(self) -> str:
        return self.stream.key

    def _checked(self, message: M) -> M:
        if not isinstance(message, self.message_class):
            raise StreamTypeError(
                f"stream {self.key!r} carries {self.stream.message_type}, "
                f"got a {type(message).__module__}.{type(message).__name__}"
            )
        return message

    def _append_drop_oldest(self, entries: list[codec.Entry]) -> list[str]:
        retention = self._settings.retention
        ids: list[str] = []
        for start in range(0, len(entries), MAX_ENTRIES_PER_SCRIPT_CALL):
            added, dropped, unread = self._reconnector.call(
                functools.partial(
                    self._drop_oldest.append,
                    self.key,
                    entries[start : start + MAX_ENTRIES_PER_SCRIPT_CALL],
                    retention.drop_oldest_max_len,
                    retention.approximate_trim,
                )
            )
            ids += added
            self._published.inc(len(added))
            self._dropped.inc(dropped)
            for group, lost in unread.items():
                self._dropped_unread.labels(topic=self.key, group=group).inc(lost)
        return ids

    def _append_keep_unread(self, entries: list[codec.Entry]) -> list[str]:
        retention = self._settings.retention
        started = time.monotonic()
        ids: list[str] = []
        while len(ids) < len(entries):
            chunk = entries[len(ids) : len(ids) + MAX_ENTRIES_PER_SCRIPT_CALL]
            added, trimmed = self._reconnector.call(
                functools.partial(
                    self._scripts.append, self.key, chunk, retention.keep_unread_max_len
                )
            )
            ids += added
            self._published.inc(len(added))
            self._trimmed.inc(trimmed)
            if added:
                continue
            # Full of entries some group still needs: wait for consumers to acknowledge.
            waited = time.monotonic() - started
            if waited >= retention.backpressure_timeout_s:
                self._timeouts.inc()
                raise BackpressureError(
                    self.key, retention.keep_unread_max_len, waited, ids, len(entries) - len(ids)
                )
            pause = min(retention.backpressure_poll_s, retention.backpressure_timeout_s - waited)
            time.sleep(pause)
            self._waited.inc(pause)
        return ids
