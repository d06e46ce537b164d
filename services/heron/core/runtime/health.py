"""Liveness (the main loop still ticks) and readiness (the real dependencies answer).

Liveness answers "should this process be restarted?": it fails only when the main loop is stuck.
Readiness answers "can it do its work now?": every registered check runs against the real
dependency on each probe — a PING to Redis, not a remembered flag of an earlier success.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Protocol, TypeVar

import redis
from pydantic import SecretStr
from redis.backoff import NoBackoff
from redis.retry import Retry

from heron.core.runtime.redact import redact_text, redact_url


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str = ""


class Check(Protocol):
    """One readiness check: a name for reports and one method that tests the dependency."""

    name: str

    def check(self) -> CheckResult: ...


C = TypeVar("C", bound=Check)


class FlagCheck:
    """A condition the service itself sets, e.g. FlagCheck("model loaded") after loading."""

    def __init__(self, name: str, ok: bool = False, detail: str = "") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._result = CheckResult(ok, detail or ("set" if ok else "not set yet"))

    def set(self, detail: str = "set") -> None:
        with self._lock:
            self._result = CheckResult(True, detail)

    def clear(self, reason: str) -> None:
        with self._lock:
            self._result = CheckResult(False, reason)

    def reset(self) -> None:
        self.clear("not set yet")

    def check(self) -> CheckResult:
        with self._lock:
            return self._result


class RedisCheck:
    """PINGs Redis with a short timeout and no retries, so a probe never hangs on a dead server.

    The client is built once (lazily connected, thread-safe pool) and reused by every probe.
    """

    def __init__(self, url: str | SecretStr, timeout_s: float = 0.5, name: str = "redis") -> None:
        raw = url.get_secret_value() if isinstance(url, SecretStr) else url
        self.name = name
        self.where = redact_url(raw)
        self._client = redis.Redis.from_url(
            raw,
            socket_connect_timeout=timeout_s,
            socket_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )

    def check(self) -> CheckResult:
        try:
            self._client.ping()
        except redis.RedisError as e:
            reason = redact_text(f"{type(e).__name__}: {e}")
            return CheckResult(False, f"PING {self.where} failed: {reason}")
        return CheckResult(True, f"PING {self.where} answered")

    def close(self) -> None:
        self._client.close()


@dataclass(frozen=True)
class NamedResult:
    name: str
    ok: bool
    detail: str


class Readiness:
    """The registered checks; `run()` tests each one now. Not ready while the service stops."""

    def __init__(self, stopping: threading.Event | None = None) -> None:
        self._checks: list[Check] = []
        self._lock = threading.Lock()
        self._stopping = stopping if stopping is not None else threading.Event()

    def add(self, check: C) -> C:
        with self._lock:
            if any(c.name == check.name for c in self._checks):
                raise ValueError(f"a readiness check named {check.name!r} is already registered")
            self._checks.append(check)
        return check

    def close(self) -> None:
        """Close the checks that hold a client (those with a `close()` method)."""
        with self._lock:
            checks = list(self._checks)
        for check in checks:
            close = getattr(check, "close", None)
            if callable(close):
                close()

    def run(self) -> list[NamedResult]:
        with self._lock:
            checks = list(self._checks)
        results: list[NamedResult] = []
        if self._stopping.is_set():
            results.append(NamedResult("not stopping", False, "draining in-flight work"))
        for check in checks:
            try:
                result = check.check()
            # A broken check must report itself as failed, not take /readyz down with a 500.
            except Exception as e:
                result = CheckResult(False, redact_text(f"check raised {type(e).__name__}: {e}"))
            results.append(NamedResult(check.name, result.ok, result.detail))
        return results


class Heartbeat:
    """The main loop's tick. Alive while ticks come within `timeout_s` of each other.

    Before the first tick (start-up, model loading) the limit is `startup_timeout_s`; once
    stopping, liveness is the shutdown watchdog's business and this reports alive.
    """

    def __init__(
        self,
        timeout_s: float,
        startup_timeout_s: float,
        stopping: threading.Event | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        self.startup_timeout_s = startup_timeout_s
        self._created = time.monotonic()
        self._last: float | None = None
        self._stopping = stopping if stopping is not None else threading.Event()

    def beat(self) -> None:
        self._last = time.monotonic()

    def check(self) -> CheckResult:
        now = time.monotonic()
        if self._stopping.is_set():
            return CheckResult(True, "stopping: bounded by the shutdown grace period")
        if self._last is None:
            waited = now - self._created
            ok = waited <= self.startup_timeout_s
            return CheckResult(
                ok, f"starting for {waited:.1f} s (limit {self.startup_timeout_s:g} s)"
            )
        age = now - self._last
        ok = age <= self.timeout_s
        return CheckResult(ok, f"last tick {age:.2f} s ago (limit {self.timeout_s:g} s)")
