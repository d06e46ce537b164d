"""libnvds_redis_proto.so: each message is one entry of the Redis stream `topic`, the JSON in
field `payloadkey` (DeepStream's default "metadata"), trimmed to about `streamsize` entries
(default 10000, `MAXLEN ~`): this is an outbound feed for other applications, not Heron's bus."""

from __future__ import annotations

from collections.abc import Sequence

import redis
from redis.retry import Retry

from heron.core.backoff import Backoff
from heron.overlay.sinks.base import BrokerError
from heron.overlay.sinks.broker.conn import BrokerOptions

DEFAULT_PAYLOAD_KEY = "metadata"
DEFAULT_STREAM_SIZE = 10_000


class RedisStreamAdapter:
    def __init__(self, options: BrokerOptions) -> None:
        s = options.settings
        self.topic = options.topic
        self.field = s.payloadkey or DEFAULT_PAYLOAD_KEY
        self.maxlen = s.streamsize or DEFAULT_STREAM_SIZE
        password = options.password.get_secret_value() if options.password else None
        self.client = redis.Redis(
            host=options.host,
            port=options.port,
            username=s.username,
            password=password,
            socket_timeout=2,  # a dead broker must not stall the overlay past its liveness
            socket_connect_timeout=2,
            retry=Retry(Backoff(0.05, 1.0), 2),  # a blip is ridden out; an outage fails fast
            retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        )
        self.where = f"redis://{options.host}:{options.port} stream {self.topic!r}"

    def send(self, payloads: Sequence[bytes]) -> None:
        if not payloads:
            return
        pipe = self.client.pipeline(transaction=False)
        for payload in payloads:
            pipe.xadd(self.topic, {self.field: payload}, maxlen=self.maxlen, approximate=True)
        try:
            pipe.execute()
        except redis.RedisError as e:
            raise BrokerError(f"{self.where}: {type(e).__name__}: {e}") from e

    def close(self) -> None:
        self.client.close()
