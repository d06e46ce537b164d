"""Readiness checks against the real dependency, and the liveness heartbeat."""

from __future__ import annotations

import threading
import time

import pytest
from heron.core.runtime import CheckResult, FlagCheck, Heartbeat, Readiness, RedisCheck

from tests.support.redis_server import RedisServer, free_port

PASSWORD = "s3cr3t-in-url"


def with_password(url: str) -> str:
    # redis-server's default user has no password set, so it accepts any in AUTH default ...;
    # what matters here is that the password never shows up in a report.
    return url.replace("redis://", f"redis://default:{PASSWORD}@")


def test_redis_check_follows_the_real_server(redis_server: RedisServer) -> None:
    check = RedisCheck(with_password(redis_server.url), timeout_s=0.5)
    try:
        up = check.check()
        assert up.ok, up.detail
        redis_server.stop()
        down = check.check()
        assert not down.ok
        assert "ConnectionError" in down.detail and f"127.0.0.1:{redis_server.port}" in down.detail
        redis_server.start()
        assert check.check().ok  # the same client reconnects
        for result in (up, down):
            assert PASSWORD not in result.detail
            assert "default:***@" in result.detail
    finally:
        check.close()


def test_redis_check_fails_fast_on_a_closed_port() -> None:
    check = RedisCheck(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.3)
    result = check.check()
    assert not result.ok and "PING redis://127.0.0.1" in result.detail


def test_flag_check_is_set_and_cleared_by_the_service() -> None:
    flag = FlagCheck("model loaded")
    assert flag.check() == CheckResult(False, "not set yet")
    flag.set("resnet18 v3")
    assert flag.check() == CheckResult(True, "resnet18 v3")
    flag.clear("engine file vanished")
    assert flag.check() == CheckResult(False, "engine file vanished")
    flag.reset()
    assert not flag.check().ok


class Exploding:
    name = "explodes"

    def check(self) -> CheckResult:
        raise RuntimeError("redis://u:leaky-password@h is down")


def test_readiness_reports_every_check_and_survives_one_that_raises() -> None:
    readiness = Readiness()
    model = readiness.add(FlagCheck("model loaded"))
    readiness.add(Exploding())
    results = {r.name: r for r in readiness.run()}
    assert set(results) == {"model loaded", "explodes"}
    assert not results["explodes"].ok
    assert "RuntimeError" in results["explodes"].detail
    assert "leaky-password" not in results["explodes"].detail
    model.set()
    assert {r.name: r.ok for r in readiness.run()} == {"model loaded": True, "explodes": False}


def test_readiness_fails_while_stopping() -> None:
    stopping = threading.Event()
    readiness = Readiness(stopping)
    readiness.add(FlagCheck("model loaded", ok=True))
    assert all(r.ok for r in readiness.run())
    stopping.set()
    failed = [r.name for r in readiness.run() if not r.ok]
    assert failed == ["not stopping"]


def test_duplicate_check_names_are_refused() -> None:
    readiness = Readiness()
    readiness.add(FlagCheck("model loaded"))
    with pytest.raises(ValueError, match="already registered"):
        readiness.add(FlagCheck("model loaded"))


def test_heartbeat_goes_stale_without_ticks_and_recovers() -> None:
    beat = Heartbeat(timeout_s=0.05, startup_timeout_s=10)
    assert beat.check().ok and "starting" in beat.check().detail
    beat.beat()
    assert beat.check().ok
    time.sleep(0.1)
    stale = beat.check()
    assert not stale.ok and "last tick" in stale.detail
    beat.beat()
    assert beat.check().ok


def test_heartbeat_startup_limit_and_stopping() -> None:
    stopping = threading.Event()
    beat = Heartbeat(timeout_s=10, startup_timeout_s=0.05, stopping=stopping)
    time.sleep(0.1)
    assert not beat.check().ok  # never ticked within the start-up allowance
    stopping.set()
    assert beat.check().ok  # the shutdown watchdog bounds a stopping process instead
