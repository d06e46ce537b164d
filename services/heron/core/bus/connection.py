"""Building the Redis client, and riding out Redis going away.

The client itself never retries (its own retry would hide outages from the metrics and
stack a second backoff on ours); every bus call goes through a `Reconnector`, which retries
connection errors and timeouts with redis-py's `Retry` and Heron's one backoff policy
(heron.core.backoff: exponential, full jitter) until Redis is back or `give_up_after_s` has
passed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import redis
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, AuthorizationError
from redis.retry import Retry

from heron.core.backoff import Backoff
from heron.core.bus.errors import BusUnavailableError
from heron.core.bus.metrics import BusMetrics
from heron.core.bus.settings import BackoffSettings, BusSettings

log = logging.getLogger(__name__)

T = TypeVar("T")

# ConnectionError covers refused/reset sockets and BusyLoadingError (a restarted Redis still
# loading its data); wrong credentials are ConnectionErrors too but will not heal by waiting.
TRANSIENT_ERRORS = (redis.ConnectionError, redis.TimeoutError)
PERMANENT_ERRORS = (AuthenticationError, AuthorizationError)


def connect(settings: BusSettings) -> redis.Redis:
    """A client for `settings.url`. Opens no connection until the first command."""
    return redis.Redis.from_url(
        settings.url.get_secret_value(),
        protocol=2,  # the reply shapes the bus parses
        decode_responses=False,  # payloads are binary protobuf
        socket_timeout=settings.socket_timeout_s,
        socket_connect_timeout=settings.connect_timeout_s,
        retry=Retry(NoBackoff(), 0),
    )


def ping(client: redis.Redis) -> bool:
    """Readiness: True when Redis answers now. Never retries, never raises for an outage."""
    try:
        return bool(client.ping())
    except TRANSIENT_ERRORS:
        return False


class Reconnector:
    """Runs Redis operations for one stream and role, retrying while Redis is away."""

    def __init__(
        self, backoff: BackoffSettings, metrics: BusMetrics, *, stream: str, role: str
    ) -> None:
        self._give_up_after_s = backoff.give_up_after_s
        self._retry = Retry(
            Backoff(backoff.initial_s, backoff.max_s),
            retries=-1,  # unbounded count; the give-up time bounds it instead
            supported_errors=TRANSIENT_ERRORS,
        )
        self._reconnects = metrics.reconnects.labels(topic=stream, role=role)
        self._stream = stream
        self._role = role

    def call(self, op: Callable[[], T]) -> T:
        """`op()`, retried on connection loss; BusUnavailableError once past the give-up time."""
        started = time.monotonic()

        def on_failure(error: Exception, failures: int) -> None:
            away_s = time.monotonic() - started
            if self._give_up_after_s and away_s >= self._give_up_after_s:
                raise BusUnavailableError(
                    f"Redis unreachable for {away_s:.1f} s ({failures} tries) while the "
                    f"{self._role} of {self._stream!r} waited: {error}"
                ) from error
            self._reconnects.inc()
            log.warning(
                "Redis went away (%s); %s of %r retrying (try %d)",
                error,
                self._role,
                self._stream,
                failures,
            )

        return self._retry.call_with_retry(
            op,
            on_failure,
            is_retryable=lambda e: not isinstance(e, PERMANENT_ERRORS),
            with_failure_count=True,
        )
