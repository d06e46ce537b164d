"""Keep secrets out of logs, errors and health reports.

Two things leak in practice: a URL that carries a password (`redis://user:pw@host`) and the
plain value of a `SecretStr` that someone formatted by hand. `redact_url` handles the first
wherever a URL appears in text; `Redactor` also replaces every secret value it was told about.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from pydantic import BaseModel, SecretBytes, SecretStr

MASK = "***"
# Shorter secrets are not replaced by value: masking every "ab" in a log line destroys it and
# protects nothing. Such values still vanish from URLs, which is where passwords travel.
MIN_SECRET_LEN = 4

# scheme://user:password@  — the password is whatever sits between ':' and '@'.
_URL_USERINFO = re.compile(
    r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*:)(?P<password>[^\s@/]+)(?P<tail>@)"
)
# ?password=... / &token=... in a query string (redis-py and others accept credentials there).
_QUERY_SECRET = re.compile(
    r"(?P<head>[?&](?:password|passwd|pass|pwd|token|secret|key)=)(?P<value>[^&\s#]+)",
    re.IGNORECASE,
)


def redact_text(text: str) -> str:
    """`text` with every password inside a URL (userinfo or query string) replaced by ***."""
    text = _URL_USERINFO.sub(lambda m: f"{m['head']}{MASK}{m['tail']}", text)
    return _QUERY_SECRET.sub(lambda m: f"{m['head']}{MASK}", text)


def redact_url(url: str | SecretStr) -> str:
    """The URL with its password masked and everything else (host, port, db) kept readable."""
    raw = url.get_secret_value() if isinstance(url, SecretStr) else url
    try:
        parts = urlsplit(raw)
    except ValueError:
        return redact_text(raw)
    if parts.password is not None:
        userinfo, _, hostport = parts.netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        # The netloc is the first thing after "scheme://", so its first occurrence is the one.
        raw = raw.replace(parts.netloc, f"{user}:{MASK}@{hostport}", 1)
    return _QUERY_SECRET.sub(lambda m: f"{m['head']}{MASK}", raw)


def secret_values(model: BaseModel) -> list[str]:
    """Every secret a settings model holds: SecretStr values and the passwords in them."""
    found: list[str] = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr):
            raw = value.get_secret_value()
            found.append(raw)
            try:
                password = urlsplit(raw).password
            except ValueError:
                password = None
            if password:
                found.append(password)
        elif isinstance(value, SecretBytes):
            found.append(value.get_secret_value().decode(errors="replace"))
        elif isinstance(value, BaseModel):
            found.extend(secret_values(value))
    return [s for s in found if len(s) >= MIN_SECRET_LEN]


class Redactor:
    """Masks URL passwords and a fixed set of known secret values in any text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a URL that contains a password is replaced whole.
        self._secrets = sorted(
            {s for s in secrets if len(s) >= MIN_SECRET_LEN}, key=len, reverse=True
        )

    def __call__(self, text: str) -> str:
        text = redact_text(text)
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text
