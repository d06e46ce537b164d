"""Settings every service on the bus shares, declared once, and the one way to build its Bus.

A service's settings subclass `BusClientSettings` (it publishes) or `BusConsumerSettings` (it
also reads with a consumer group) instead of `ServiceSettings`; `settings.bus(registry, transport)`
builds the `Bus` from `redis_url` and the `consumer`, `retention` and `backoff` policies here.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from heron.core import streams
from heron.core.bus import (
    BackoffSettings,
    Bus,
    BusSettings,
    ConsumerSettings,
    RedisTransport,
    RetentionSettings,
    Transport,
)
from heron.core.bus.consumer import check_name
from heron.core.runtime.settings import ServiceSettings


class BusClientSettings(ServiceSettings):
    """A service that publishes on the bus: which pipeline's streams, and the bus's policies."""

    pipeline: str = Field(
        streams.DEFAULT_PIPELINE, description="Pipeline name in the bus's stream names."
    )
    retention: RetentionSettings = Field(
        default_factory=RetentionSettings, description="Bounds of the streams it writes."
    )
    backoff: BackoffSettings = Field(
        default_factory=BackoffSettings, description="Retries while Redis is away."
    )
    status_interval_s: float = Field(
        2.0,
        ge=0,
        le=60,
        description="How often the service publishes its heartbeat (serving or not, and why) "
        "for the control service's GetStatus; 0 = never.",
    )

    @field_validator("pipeline")
    @classmethod
    def _pipeline_id(cls, value: str) -> str:
        streams.events(value)  # raises ValueError naming what a pipeline id may hold
        return value

    def bus_settings(self) -> BusSettings:
        return BusSettings(url=self.redis_url, retention=self.retention, backoff=self.backoff)

    def bus(
        self, registry: CollectorRegistry | None = None, transport: Transport | None = None
    ) -> Bus:
        """The service's Bus on `transport` (its context's; Redis by default), which connects
        on first use; pass the service's metrics registry."""
        return (transport or RedisTransport()).bus(self.bus_settings(), registry)


class BusConsumerSettings(BusClientSettings):
    """A service that also reads its input as a member of a consumer group.

    Subclasses give `group` their own default (`group: str = "tracker"`); its check is
    inherited by name.
    """

    group: str = Field(min_length=1, description="Consumer group on the inputs.")
    consumer_name: str = Field(
        "",
        description="This replica's name in the group; empty = host name and process id. A "
        "stable name lets a restarted replica take its own pending input back at once.",
    )
    read_block_ms: int = Field(200, ge=0, description="Longest wait of one bus read.")
    consumer: ConsumerSettings = Field(
        default_factory=ConsumerSettings,
        description="Bus consumer policy: reclaim of abandoned input (min_idle_ms), poison limit.",
    )

    @field_validator("group")
    @classmethod
    def _group_name(cls, value: str) -> str:
        return check_name("group", value)

    @field_validator("consumer_name")
    @classmethod
    def _consumer_name(cls, value: str) -> str:
        return value and check_name("consumer_name", value)

    @model_validator(mode="after")
    def _bus_fits(self) -> BusConsumerSettings:
        # A consumer.block_ms the socket timeout cannot outlast fails here, at load (exit 2),
        # rather than when start() builds the bus.
        try:
            self.bus_settings()
        except ValidationError as e:
            raise ValueError("; ".join(_message(error) for error in e.errors())) from None
        return self

    def bus_settings(self) -> BusSettings:
        return BusSettings(
            url=self.redis_url,
            retention=self.retention,
            backoff=self.backoff,
            consumer=self.consumer,
        )

    @property
    def member(self) -> str | None:
        """The consumer name to join the group as; None = the bus's default (host and pid)."""
        return self.consumer_name or None


def _message(error: ErrorDetails) -> str:
    cause = error.get("ctx", {}).get("error")
    return str(cause) if cause is not None else error["msg"]
