"""Helpers the bus tests share."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis
from heron.core.bus import replies
from heron.core.bus.replies import RawEntry
from prometheus_client import CollectorRegistry
from redis.typing import EncodableT, FieldT


def metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0, what: str = "") -> None:
    """Poll until `condition()`; fail the test (not assert a timing) if it never holds."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout_s} s waiting for {what or condition}")
        time.sleep(0.01)


def stream_entries(raw: redis.Redis, key: str) -> list[RawEntry]:
    """Every entry of `key`, oldest first, as the bus's own checked parser reads them."""
    return replies.entries(raw.xrange(key), "XRANGE")


def stream_ids(raw: redis.Redis, key: str) -> list[str]:
    return [e.id for e in stream_entries(raw, key)]


def pending_ids(raw: redis.Redis, key: str, group: str) -> list[str]:
    return [
        replies.text(p["message_id"], "XPENDING")
        for p in raw.xpending_range(key, group, "-", "+", 1000)
    ]


def add_raw(raw: redis.Redis, key: str, fields: dict[bytes, bytes]) -> str:
    """XADD without the bus: for entries the bus would never write."""
    words: dict[FieldT, EncodableT] = dict(fields.items())
    return replies.text(raw.xadd(key, words), "XADD")
