"""One object a service's bootstrap builds: the client, the settings and the metrics, wired.

Nothing here connects at import or construction time; Redis is first contacted by the first
publish, read or ping.
"""

from __future__ import annotations

import functools
import os
import socket
from types import TracebackType

import redis
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from heron.core.bus import codec, groups
from heron.core.bus.codec import M
from heron.core.bus.connection import connect, ping
from heron.core.bus.consumer import RedisConsumer
from heron.core.bus.errors import UndecodableMessageError
from heron.core.bus.metrics import BusMetrics, default_metrics
from heron.core.bus.publisher import RedisPublisher
from heron.core.bus.settings import BusSettings
from heron.core.bus.tail import RedisTail
from heron.core.streams import StreamName

# A scrape counts at most this many undelivered entries where XINFO cannot tell a group's lag.
BACKLOG_COUNT_UP_TO = 10_000


def default_consumer_name() -> str:
    """Unique per process and stable for its life: host name (the pod's) and process id."""
    return f"{socket.gethostname()}-{os.getpid()}"


class RedisBus:
    """Makes typed publishers and consumers that share one Redis client and one set of metrics
    (the `Bus` of heron.core.bus.protocols on Redis streams)."""

    def __init__(
        self,
        settings: BusSettings | None = None,
        *,
        client: redis.Redis | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.settings = settings or BusSettings()
        self.client = client if client is not None else connect(self.settings)
        self.metrics = default_metrics() if registry is None else BusMetrics(registry)

    @classmethod
    def from_url(
        cls,
        url: str,
        settings: BusSettings | None = None,
        *,
        registry: CollectorRegistry | None = None,
    ) -> RedisBus:
        """A bus for `url`, other settings from `settings` (or the defaults)."""
        base = settings or BusSettings()
        # Validate again: the URL's scheme check lives in the model.
        merged = BusSettings.model_validate({**base.model_dump(), "url": SecretStr(url)})
        return cls(merged, registry=registry)

    def publisher(self, stream: StreamName, message_class: type[M]) -> RedisPublisher[M]:
        return RedisPublisher(
            self.client, stream, message_class, settings=self.settings, metrics=self.metrics
        )

    def consumer(
        self,
        stream: StreamName,
        message_class: type[M],
        group: str,
        name: str | None = None,
    ) -> RedisConsumer[M]:
        backlog = functools.partial(
            groups.group_backlog, self.client, stream.key, group, BACKLOG_COUNT_UP_TO
        )
        self.metrics.watch_group(stream.key, group, backlog)
        return RedisConsumer(
            self.client,
            stream,
            message_class,
            group=group,
            name=default_consumer_name() if name is None else name,
            settings=self.settings,
            metrics=self.metrics,
        )

    def tail(self, stream: StreamName, message_class: type[M]) -> RedisTail[M]:
        return RedisTail(self.client, stream, message_class)

    def outstanding(self, key: str, group: str, count_up_to: int) -> int:
        return groups.group_outstanding(self.client, key, group, count_up_to)

    def entries_added(self, key: str) -> int:
        return groups.entries_added(self.client, key)

    def groups_caught_up(self, key: str) -> dict[str, bool]:
        return groups.groups_caught_up(self.client, key)

    def stream_keys(self, pattern: str) -> list[str]:
        found = self.client.scan_iter(match=pattern, count=1000, _type="stream")
        return [groups.text(raw) for raw in found]

    def newest_id(self, key: str) -> str | None:
        newest = self.client.xrevrange(key, count=1)
        return groups.text(newest[0][0]) if newest else None

    def unfinished_ids(self, key: str, group: str, after: str, count_up_to: int) -> list[str]:
        return groups.unfinished_ids(self.client, key, group, after, count_up_to)

    def unfinished(self, stream: StreamName, message_class: type[M], count_up_to: int) -> list[M]:
        found = groups.unfinished_entries(self.client, stream.key, count_up_to)
        messages: list[M] = []
        for entry in found:
            try:
                messages.append(codec.decode(entry.fields, message_class).message)
            except UndecodableMessageError:
                continue  # its consumer dead-letters it: nothing anyone will use
        return messages

    def newest(self, stream: StreamName, message_class: type[M]) -> M | None:
        newest = self.client.xrevrange(stream.key, count=1)
        fields = newest[0][1] if newest else None
        if not isinstance(fields, dict):
            return None
        entry = {k: v for k, v in fields.items() if isinstance(k, bytes) and isinstance(v, bytes)}
        try:
            return codec.decode(entry, message_class).message
        except UndecodableMessageError:
            return None

    def ping(self) -> bool:
        """Readiness: Redis answers right now."""
        return ping(self.client)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> RedisBus:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class RedisTransport:
    """Every service on Redis streams: each builds its own client from its settings."""

    name = "redis"

    def bus(self, settings: BusSettings, registry: CollectorRegistry | None = None) -> RedisBus:
        return RedisBus(settings, registry=registry)
