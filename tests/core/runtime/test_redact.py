"""Passwords vanish from URLs and text; hosts, ports and databases stay readable."""

from __future__ import annotations

import pytest
from heron.core.runtime.redact import Redactor, redact_text, redact_url, secret_values
from pydantic import BaseModel, SecretStr


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://:pw-123@cache:6379/0", "redis://:***@cache:6379/0"),
        ("redis://default:pw-123@cache:6379/2", "redis://default:***@cache:6379/2"),
        ("rediss://u:p%40ss@h:6380", "rediss://u:***@h:6380"),
        ("redis://h:6379/0?password=pw-123&db=1", "redis://h:6379/0?password=***&db=1"),
        ("unix:///run/redis.sock?db=0", "unix:///run/redis.sock?db=0"),
        ("redis://user@h:6379", "redis://user@h:6379"),  # a user name is not a secret
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected
    assert redact_url(SecretStr(url)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("connect redis://:pw@h:1/0 failed", "connect redis://:***@h:1/0 failed"),
        (
            "a=amqp://guest:guest@mq:5672/ b=redis://x:y@h",
            "a=amqp://guest:***@mq:5672/ b=redis://x:***@h",
        ),
        ("url 'redis://h/0?token=abc&x=1'", "url 'redis://h/0?token=***&x=1'"),
        ("no secrets here: http://example.com/a:b", "no secrets here: http://example.com/a:b"),
    ],
)
def test_redact_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected


class Inner(BaseModel):
    token: SecretStr
    short: SecretStr


class Outer(BaseModel):
    url: SecretStr
    inner: Inner
    plain: str = "not secret"


def test_secret_values_walks_nested_models_and_url_passwords() -> None:
    model = Outer(
        url=SecretStr("redis://u:deep-password@h/0"),
        inner=Inner(token=SecretStr("tok-abcdef"), short=SecretStr("ab")),
    )
    found = secret_values(model)
    assert "deep-password" in found and "tok-abcdef" in found
    assert "ab" not in found  # too short to mask by value without wrecking every line
    assert "not secret" not in found


def test_redactor_masks_known_values_anywhere() -> None:
    redact = Redactor(["tok-abcdef", "deep-password"])
    assert redact("key tok-abcdef and deep-password.") == "key *** and ***."
