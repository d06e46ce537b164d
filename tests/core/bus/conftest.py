"""Fixtures of the bus tests: fast settings, a fresh metrics registry, unique stream names."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
from heron.core.bus import (
    BackoffSettings,
    BusSettings,
    ConsumerSettings,
    RedisBus,
    RetentionSettings,
)
from prometheus_client import CollectorRegistry

# Short waits keep the suite fast; the defaults are for production.
FAST = BusSettings(
    socket_timeout_s=3.0,
    connect_timeout_s=1.0,
    backoff=BackoffSettings(initial_s=0.01, max_s=0.1, give_up_after_s=20.0),
    retention=RetentionSettings(backpressure_timeout_s=0.3, backpressure_poll_s=0.01),
    consumer=ConsumerSettings(block_ms=200, min_idle_ms=100, reclaim_interval_ms=0),
)


@pytest.fixture
def settings() -> BusSettings:
    return FAST


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def name() -> str:
    """A stream id no other test uses (REDIS_URL may name a shared server)."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def bus(redis_url: str, settings: BusSettings, registry: CollectorRegistry) -> Iterator[RedisBus]:
    with RedisBus.from_url(redis_url, settings, registry=registry) as b:
        yield b


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    """A plain client to look at (or tamper with) what the bus wrote."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()
