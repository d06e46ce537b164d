"""One object a service's bootstrap builds: the client, the settings and the metrics, wired.

Nothing here connects at import or construction time; Redis is first contacted by the first
publish, read or ping.
"""

from __future__ import annotations

import os
import socket
from types import TracebackType

import redis
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from heron.core.bus.codec import M
from heron.core.bus.connection import connect, ping
from heron.core.bus.consumer import Consumer
from heron.core.bus.metrics import BusMetrics, default_metrics
from heron.core.bus.publisher import Publisher
from heron.core.bus.settings import BusSettings
from heron.core.streams import StreamName


def default_consumer_name() -> str:
    """Unique per process and stable for its life: host name (the pod's) and process id."""
    return f"{socket.gethostname()}-{os.getpid()}"


class Bus:
    """Makes typed publishers and consumers that share one Redis client and one set of metrics."""

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
    ) -> Bus:
        """A bus for `url`, other settings from `settings` (or the defaults)."""
        base = settings or BusSettings()
        # Validate again: the URL's scheme check lives in the model.
        merged = BusSettings.model_validate({**base.model_dump(), "url": SecretStr(url)})
        return cls(merged, registry=registry)

    def publisher(self, stream: StreamName, message_class: type[M]) -> Publisher[M]:
        return Publisher(
            self.client, stream, message_class, settings=self.settings, metrics=self.metrics
        )

    def consumer(
        self,
        stream: StreamName,
        message_class: type[M],
        group: str,
        name: str | None = None,
    ) -> Consumer[M]:
        return Consumer(
            self.client,
            stream,
            message_class,
            group=group,
            name=default_consumer_name() if name is None else name,
            settings=self.settings,
            metrics=self.metrics,
        )

    def ping(self) -> bool:
        """Readiness: Redis answers right now."""
        return ping(self.client)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Bus:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
