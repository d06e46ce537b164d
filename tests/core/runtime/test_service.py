"""A tiny service run in a real subprocess: probes, metrics, logs and graceful SIGTERM.

`Worker` below is the service under test. Each test starts it with
`python -m tests.core.runtime.test_service` and steers it through files in its work folder
(`work` = take work, `model` = model loaded, `stick` = main loop stuck, `eos` = stop itself,
`fail` = step raises).
It writes the ids of the items it started, finished and acknowledged to started.txt, done.txt
and acked.txt, and touches `closed` in close().
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from heron.core.runtime import (
    EXIT_BAD_SETTINGS,
    EXIT_FAILED,
    EXIT_FATAL,
    EXIT_GRACE_EXPIRED,
    EXIT_OK,
    FatalError,
    FlagCheck,
    Service,
    ServiceSettings,
    run_service,
)
from prometheus_client.parser import text_string_to_metric_families

from tests.core.runtime.service_process import ServiceProcess
from tests.support.redis_server import RedisServer, free_port

PASSWORD = "pw-that-must-never-be-logged"
log = logging.getLogger("heron.test.worker")


class WorkerSettings(ServiceSettings):
    service_name: str = "runtime-test"
    work_dir: Path
    work_s: float = 0.4
    drain_hangs: bool = False


class Worker(Service[WorkerSettings]):
    """Takes numbered items while `work` exists, each handled in a pool thread for work_s."""

    def start(self) -> None:
        self.dir = self.settings.work_dir
        self.pool = ThreadPoolExecutor(max_workers=2)
        self.lock = threading.Lock()
        self.in_flight = 0
        self.next_id = 0
        self.model = self.ctx.readiness.add(FlagCheck("model loaded"))
        self.ctx.check_bus()
        # Exactly what must be redacted: the raw URL, formatted by hand.
        log.info("connecting to %s", self.settings.redis_url.get_secret_value())

    def step(self) -> None:
        while (self.dir / "stick").exists():  # a stuck loop: no tick, no stop check
            time.sleep(0.01)
        if (self.dir / "eos").exists():
            self.ctx.stop("end of stream")
        if (self.dir / "fail").exists():
            url = self.settings.redis_url.get_secret_value()
            raise RuntimeError(f"lost the connection to {url}")
        if (self.dir / "fatal").exists():
            raise FatalError("sink0: No space left on device")
        if (self.dir / "model").exists():
            self.model.set("loaded")
        with self.lock:
            take = (self.dir / "work").exists() and self.in_flight < 2
            if take:
                self.in_flight += 1
                item, self.next_id = self.next_id, self.next_id + 1
        if take:
            self._append("started", item)
            self.pool.submit(self._handle, item)
        self.ctx.wait(0.02)

    def _handle(self, item: int) -> None:
        with self.ctx.metrics.track("work"):
            time.sleep(self.settings.work_s)
        self._append("done", item)
        with self.lock:
            self.in_flight -= 1

    def drain(self) -> None:
        if self.settings.drain_hangs:
            threading.Event().wait()
        self.pool.shutdown(wait=True)  # the in-flight items finish here
        for item in read_ids(self.dir / "done.txt"):
            self._append("acked", item)

    def close(self) -> None:
        (self.dir / "closed").touch()

    def _append(self, kind: str, item: int) -> None:
        with self.lock, open(self.dir / f"{kind}.txt", "a") as f:
            f.write(f"{item}\n")


def read_ids(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()] if path.exists() else []


Start = Callable[..., ServiceProcess]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """start(redis_url=None, **env): the Worker in a subprocess, killed at teardown if alive."""
    procs: list[ServiceProcess] = []

    def _start(redis_url: str | None = None, **env: str) -> ServiceProcess:
        url = redis_url or f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
        settings = {
            "HERON_WORK_DIR": str(tmp_path),
            "HERON_REDIS_URL": url,
            "HERON_READINESS_TIMEOUT_S": "0.3",
        }
        proc = ServiceProcess(
            [sys.executable, "-m", "tests.core.runtime.test_service"], {**settings, **env}
        )
        procs.append(proc)
        return proc

    yield _start
    for proc in procs:
        proc.kill()


def with_password(url: str) -> str:
    # The fixture's redis-server has no password; its default user accepts any in AUTH.
    return url.replace("redis://", f"redis://default:{PASSWORD}@")


def touch(path: Path) -> None:
    path.write_text("")


def test_sigterm_finishes_in_flight_work_then_exits_0(start: Start, tmp_path: Path) -> None:
    touch(tmp_path / "work")
    proc = start()
    proc.wait_running()
    proc.wait_for(lambda: read_ids(tmp_path / "started.txt"), "work to start")
    started, done = read_ids(tmp_path / "started.txt"), read_ids(tmp_path / "done.txt")
    proc.signal(signal.SIGTERM)
    in_flight = set(started) - set(done)
    assert in_flight, "the test needs work in flight when SIGTERM arrives"

    assert proc.wait() == EXIT_OK
    finished = set(read_ids(tmp_path / "done.txt"))
    assert in_flight <= finished  # what was in flight at SIGTERM was finished ...
    assert set(read_ids(tmp_path / "started.txt")) == finished  # ... and nothing was dropped
    assert set(read_ids(tmp_path / "acked.txt")) == finished  # ... and all of it acknowledged
    messages = [r["message"] for r in proc.records()]
    assert any(m.startswith("stopping: SIGTERM received") for m in messages)
    assert messages[-1] == "stopped"


def test_second_sigterm_forces_exit(start: Start, tmp_path: Path) -> None:
    proc = start(HERON_DRAIN_HANGS="true", HERON_SHUTDOWN_GRACE_S="60")
    proc.wait_running()
    proc.signal(signal.SIGTERM)
    proc.wait_log(lambda r: r["message"].startswith("stopping"))
    # While draining: not ready (no new work should come), still alive (the watchdog rules).
    status, body = proc.probe("/readyz")
    assert status == 503 and body["failed"][0]["name"] == "not stopping"
    assert proc.probe("/healthz")[0] == 200

    proc.signal(signal.SIGTERM)
    assert proc.wait() == 128 + signal.SIGTERM
    last = proc.records()[-1]
    assert last["level"] == "ERROR" and last["message"].startswith("second SIGTERM")


def test_grace_period_expiry_forces_exit(start: Start) -> None:
    proc = start(HERON_DRAIN_HANGS="true", HERON_SHUTDOWN_GRACE_S="0.3")
    proc.wait_running()
    proc.signal(signal.SIGINT)
    assert proc.wait() == EXIT_GRACE_EXPIRED
    last = proc.records()[-1]
    assert last["level"] == "ERROR" and "grace period" in last["message"]


def test_healthz_fails_while_the_loop_is_stuck(start: Start, tmp_path: Path) -> None:
    proc = start(HERON_LIVENESS_TIMEOUT_S="0.3")
    proc.wait_running()
    assert proc.probe("/healthz")[0] == 200
    touch(tmp_path / "stick")

    def stuck() -> dict[str, Any] | None:
        status, body = proc.probe("/healthz")
        return body if status == 503 else None

    body = proc.wait_for(stuck, "/healthz to fail")
    assert body["status"] == "stuck" and "last tick" in body["detail"]
    (tmp_path / "stick").unlink()
    proc.wait_for(lambda: proc.probe("/healthz")[0] == 200, "/healthz to recover")
    proc.signal()
    assert proc.wait() == EXIT_OK


def test_metrics_endpoint_serves_the_standard_set(start: Start, tmp_path: Path) -> None:
    touch(tmp_path / "work")
    proc = start(HERON_WORK_S="0.01")
    proc.wait_running()
    proc.wait_for(lambda: len(read_ids(tmp_path / "done.txt")) >= 3, "three items done")
    status, text = proc.get("/metrics")
    assert status == 200
    families = {f.name: f for f in text_string_to_metric_families(text)}
    up = families["heron_service_up"].samples
    assert [(s.labels, s.value) for s in up] == [({"service": "runtime-test"}, 1.0)]
    frames = families["heron_stage_frames"].samples
    labels = {"pipeline": "", "stage": "work"}
    assert any(s.labels == labels and s.value >= 3 for s in frames)
    latency = families["heron_stage_latency_seconds"]
    assert latency.type == "histogram"
    assert any(s.name.endswith("_count") and s.value >= 3 for s in latency.samples)
    assert "process_resident_memory_bytes" in families
    proc.signal()
    assert proc.wait() == EXIT_OK


def test_readyz_follows_redis_and_the_model_flag(
    start: Start, tmp_path: Path, redis_server: RedisServer
) -> None:
    redis_server.stop()
    proc = start(with_password(redis_server.url))
    proc.wait_running()

    def failed() -> tuple[int, list[str], str]:
        status, body = proc.get("/readyz")
        assert PASSWORD not in body
        return status, [c["name"] for c in json.loads(body)["failed"]], body

    status, names, body = failed()
    assert (status, names) == (503, ["model loaded", "redis"])
    assert "ConnectionError" in body and "default:***@" in body

    redis_server.start()
    proc.wait_for(lambda: failed()[1] == ["model loaded"], "redis check to pass")
    touch(tmp_path / "model")
    proc.wait_for(lambda: failed()[0] == 200, "/readyz 200")
    redis_server.stop()
    proc.wait_for(lambda: failed()[:2] == (503, ["redis"]), "redis check to fail again")

    proc.signal()
    assert proc.wait() == EXIT_OK
    # Every log line is JSON with the standard keys, and the password appears in none.
    assert PASSWORD not in "".join(proc.lines)
    records = proc.records()
    assert all({"ts", "level", "logger", "service", "message"} <= r.keys() for r in records)
    assert {r["service"] for r in records} == {"runtime-test"}
    connecting = next(r for r in records if r["message"].startswith("connecting to"))
    assert (
        connecting["message"]
        == f"connecting to redis://default:***@127.0.0.1:{redis_server.port}/0"
    )
    starting = next(r for r in records if r["message"] == "starting")
    assert starting["settings"]["redis_url"].startswith("redis://default:***@")


def test_service_can_stop_itself(start: Start, tmp_path: Path) -> None:
    proc = start()
    proc.wait_running()
    touch(tmp_path / "eos")
    assert proc.wait() == EXIT_OK
    last = proc.records()[-1]
    assert (last["message"], last["reason"]) == ("stopped", "end of stream")


def test_failing_step_exits_1_with_a_redacted_traceback(start: Start, tmp_path: Path) -> None:
    proc = start(with_password("redis://127.0.0.1:1/0"))
    proc.wait_running()
    touch(tmp_path / "fail")
    assert proc.wait() == EXIT_FAILED
    failure = next(r for r in proc.records() if r["message"] == "service failed")
    assert failure["level"] == "ERROR"
    assert (
        "RuntimeError: lost the connection to redis://default:***@127.0.0.1:1/0" in failure["exc"]
    )
    assert PASSWORD not in "".join(proc.lines)
    assert (tmp_path / "closed").exists()  # close() ran after the failure


def test_a_fatal_error_exits_3_with_its_message_alone(start: Start, tmp_path: Path) -> None:
    proc = start()
    proc.wait_running()
    touch(tmp_path / "fatal")
    assert proc.wait() == EXIT_FATAL
    failure = next(r for r in proc.records() if r["level"] == "ERROR")
    assert failure["message"] == "fatal: sink0: No space left on device"
    assert "exc" not in failure  # one line: a traceback adds nothing to the reason
    assert (tmp_path / "closed").exists()  # close() ran after the failure


def test_taken_port_exits_1_naming_it(start: Start) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = start(HERON_METRICS__PORT=str(port))
        assert proc.wait() == EXIT_FAILED
    assert any(f"cannot listen on 127.0.0.1:{port}" in r["message"] for r in proc.records())


def test_bad_settings_exit_2_naming_field_and_source(start: Start) -> None:
    proc = start(
        f"ftp://admin:{PASSWORD}@h/0", HERON_METRICS__PORT="not-a-port", HERON_WORK_S="slow"
    )
    assert proc.wait() == EXIT_BAD_SETTINGS
    (record,) = proc.records()
    assert record["level"] == "ERROR"
    for part in ("metrics.port", "HERON_METRICS__PORT", "work_s", "HERON_WORK_S", "redis_url"):
        assert part in record["message"]
    assert PASSWORD not in "".join(proc.lines)


if __name__ == "__main__":
    sys.exit(run_service(Worker, WorkerSettings))
