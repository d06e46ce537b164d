"""Typed settings of the bus: where Redis is, how long to wait for it, how big streams may grow.

One model, loaded once by the service runtime and passed down as typed objects; the defaults
live here and nowhere else.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

URL_SCHEMES = ("redis", "rediss", "unix")


class BackoffSettings(BaseModel):
    """Reconnect policy when Redis goes away: exponential backoff with full jitter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    initial_s: float = Field(
        0.05,
        gt=0,
        description="Upper bound of the first wait (full jitter); doubles on every failed try.",
    )
    max_s: float = Field(5.0, gt=0, description="Longest wait between two tries.")
    give_up_after_s: float = Field(
        60.0,
        ge=0,
        description="Raise BusUnavailableError once Redis has been away this long; 0 = never.",
    )

    @model_validator(mode="after")
    def _max_not_below_initial(self) -> BackoffSettings:
        if self.max_s < self.initial_s:
            raise ValueError(
                f"backoff.max_s must be >= backoff.initial_s ({self.initial_s}), got {self.max_s}"
            )
        return self


class RetentionSettings(BaseModel):
    """How long streams get (see heron.core.streams.Retention)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    drop_oldest_max_len: int = Field(
        1000, ge=1, description="Entries a frame stream keeps; older ones are trimmed and counted."
    )
    approximate_trim: bool = Field(
        False,
        description="Trim frame streams with '~' (cheaper; may keep somewhat more than the bound).",
    )
    keep_unread_max_len: int = Field(
        100_000,
        ge=1,
        description="Entries a metadata/event stream may hold before publishers wait "
        "(only entries every consumer group has acknowledged are ever trimmed).",
    )
    backpressure_timeout_s: float = Field(
        10.0, gt=0, description="How long a publisher waits for room before BackpressureError."
    )
    backpressure_poll_s: float = Field(
        0.05, gt=0, description="How often a waiting publisher checks for room again."
    )


class ConsumerSettings(BaseModel):
    """Batching, reclaim and poison-message policy of consumers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_size: int = Field(64, ge=1, le=10_000, description="Most messages one read returns.")
    block_ms: int = Field(
        1000, ge=0, description="How long a read waits for new messages; 0 = do not wait."
    )
    min_idle_ms: int = Field(
        30_000,
        ge=0,
        description="A message pending this long on any consumer counts as abandoned and is "
        "reclaimed (XAUTOCLAIM).",
    )
    reclaim_interval_ms: int = Field(
        5000, ge=0, description="How often a consumer looks for abandoned messages; 0 = every read."
    )
    max_deliveries: int = Field(
        5, ge=1, description="A message delivered more often than this is dead-lettered as poison."
    )
    start_id: Literal["0", "$"] = Field(
        "0",
        description="Where a new consumer group starts: '0' = every entry still in the stream "
        "(nothing published before the group existed is skipped), '$' = only new entries.",
    )


class BusSettings(BaseModel):
    """Everything the bus needs; `url` may hold a password, so it is a secret."""

    # The URL may carry a password: keep raw input out of error messages at this level
    # (our own validators say what they found; nested models still show theirs).
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    url: SecretStr = Field(
        SecretStr("redis://127.0.0.1:6379/0"),
        description="redis://[user:password@]host:port/db, rediss://... or unix:///path.sock",
    )
    socket_timeout_s: float = Field(
        10.0, gt=0, description="Longest wait for one reply; must exceed consumer.block_ms."
    )
    connect_timeout_s: float = Field(2.0, gt=0, description="Longest wait to open a connection.")
    backoff: BackoffSettings = Field(default_factory=BackoffSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    consumer: ConsumerSettings = Field(default_factory=ConsumerSettings)

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: SecretStr) -> SecretStr:
        # Name only the scheme in the error: the rest of the URL may carry a password.
        parts = urlsplit(url.get_secret_value())
        if parts.scheme not in URL_SCHEMES:
            raise ValueError(
                f"url: expected a scheme of {', '.join(URL_SCHEMES)}, got {parts.scheme!r}"
            )
        try:
            parts.port  # noqa: B018 -- parsing it is the check
        except ValueError:
            raise ValueError("url: expected a port from 1 to 65535 after the host") from None
        return url

    @model_validator(mode="after")
    def _blocking_read_fits_socket_timeout(self) -> BusSettings:
        # A blocking XREADGROUP that outlasts the socket timeout would read as a dead server.
        if self.consumer.block_ms / 1000 >= self.socket_timeout_s:
            raise ValueError(
                f"socket_timeout_s ({self.socket_timeout_s}) must exceed consumer.block_ms "
                f"({self.consumer.block_ms} ms), or every idle read times out"
            )
        return self
