"""Structured logs: one JSON object a line (or a console format), secrets masked.

Standard `logging` throughout: services call `logging.getLogger(__name__)` and pass structured
fields with `extra={...}`. `configure_logging` installs one handler on the root logger with a
`RedactingFilter`, so every record from every library passes the redaction before it is written.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from pydantic import SecretBytes, SecretStr

from heron.core.runtime.redact import MASK, Redactor

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields a caller passed with `extra=`."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}


class RedactingFilter(logging.Filter):
    """Masks URL passwords and known secret values in a record's message, fields and traceback.

    Attach it to a handler (not a logger): handler filters see records of every logger.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.redact = Redactor(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            # A bad format string must not raise into the caller from inside a filter.
            message = f"{record.msg!r} (unformattable args {record.args!r})"
        record.msg = self.redact(message)
        record.args = None
        for key, value in extra_fields(record).items():
            setattr(record, key, self._clean(value))
        if record.exc_info and not record.exc_text:
            # Format the traceback here, redacted; formatters reuse exc_text when it is set.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True

    def _clean(self, value: Any) -> Any:
        if isinstance(value, (SecretStr, SecretBytes)):
            return MASK
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {k: self._clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._clean(v) for v in value]
        if isinstance(value, (bool, int, float)) or value is None:
            return value
        return self.redact(str(value))


def _timestamp(record: logging.LogRecord) -> str:
    stamp = datetime.fromtimestamp(record.created, tz=UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "service", "message", ...extra fields, "exc"}` on one line.

    Written here rather than taken from python-json-logger (4.2, which kopf brings along),
    because that formatter cannot give this shape without overriding most of it: it formats
    the traceback again from `exc_info`, ignoring the `exc_text` RedactingFilter masked (a
    password in an exception message would be written); extra fields replace the base keys
    (`extra={"service": ...}`) where here they never do, and those starting with `_` are
    dropped; its timestamp is not `...123Z`, and `service` cannot come before `message`.
    """

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "service": self.service,
            "message": record.getMessage(),
        }
        for key, value in extra_fields(record).items():
            entry.setdefault(key, value)  # a field named like a base key never replaces it
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, default=str, ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    """`2026-11-27T22:03:35.123Z INFO  logger [service] message key=value` for people."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={v}" for k, v in extra_fields(record).items())
        line = (
            f"{_timestamp(record)} {record.levelname:<5} {record.name} [{self.service}] "
            f"{record.getMessage()}"
        )
        if fields:
            line = f"{line} {fields}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line = f"{line}\n{record.exc_text}"
        return line


def configure_logging(
    service: str,
    level: str = "INFO",
    fmt: Literal["json", "console"] = "json",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> logging.Handler:
    """Route every logger of the process through one redacting handler; returns that handler.

    Replaces handlers already on the root logger, so calling it again (once settings are
    known) reconfigures rather than duplicates output.
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(RedactingFilter(secrets))
    handler.setFormatter(JsonFormatter(service) if fmt == "json" else ConsoleFormatter(service))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    return handler


def flush_logs() -> None:
    """Flush every root handler; called before an `os._exit` that skips interpreter shutdown."""
    for handler in logging.getLogger().handlers:
        handler.flush()
