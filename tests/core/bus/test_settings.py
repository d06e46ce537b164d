"""Bus settings refuse bad values with the field, what was expected and what came."""

from __future__ import annotations

from typing import Any

import pytest
from heron.core.bus import BusSettings, RedisBus
from pydantic import ValidationError


@pytest.mark.parametrize(
    ("data", "field", "says"),
    [
        (
            {"url": "http://host:6379"},
            "url",
            "expected a scheme of redis, rediss, unix, got 'http'",
        ),
        ({"url": "localhost:6379"}, "url", "got 'localhost'"),
        ({"socket_timeout_s": 0}, "socket_timeout_s", "greater than 0"),
        (
            {"socket_timeout_s": 1.0, "consumer": {"block_ms": 1000}},
            "",
            "socket_timeout_s (1.0) must exceed consumer.block_ms (1000 ms)",
        ),
        (
            {"backoff": {"initial_s": 2, "max_s": 1}},
            "backoff",
            "max_s must be >= backoff.initial_s",
        ),
        ({"backoff": {"give_up_after_s": -1}}, "backoff.give_up_after_s", "greater than or equal"),
        (
            {"retention": {"drop_oldest_max_len": 0}},
            "retention.drop_oldest_max_len",
            "greater than or equal to 1",
        ),
        (
            {"retention": {"keep_unread_max_len": "many"}},
            "retention.keep_unread_max_len",
            "integer",
        ),
        ({"consumer": {"max_deliveries": 0}}, "consumer.max_deliveries", "greater than or equal"),
        ({"consumer": {"start_id": "1-0"}}, "consumer.start_id", "'0' or '$'"),
        ({"consumer": {"batch": 5}}, "consumer.batch", "Extra inputs are not permitted"),
        ({"redis_url": "redis://x"}, "redis_url", "Extra inputs are not permitted"),
    ],
)
def test_bad_settings_are_refused(data: dict[str, Any], field: str, says: str) -> None:
    with pytest.raises(ValidationError) as raised:
        BusSettings.model_validate(data)

    text = str(raised.value)
    assert field in text
    assert says in text


def test_password_in_url_never_shows() -> None:
    settings = BusSettings(url="redis://:hunter2@127.0.0.1:6379/0")

    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.model_dump())
    with pytest.raises(ValidationError) as raised:
        BusSettings(url="http://:hunter2@127.0.0.1:6379/0")
    assert "hunter2" not in str(raised.value)


def test_from_url_validates_the_url() -> None:
    with pytest.raises(ValidationError, match="got 'tcp'"):
        RedisBus.from_url("tcp://127.0.0.1:6379")


def test_building_a_bus_opens_no_connection() -> None:
    # Port 9 (discard) on loopback: nothing listens; construction must not notice.
    bus = RedisBus.from_url("redis://127.0.0.1:9/0")

    assert bus.ping() is False
