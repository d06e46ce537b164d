"""A service run as a real subprocess: its JSON log lines, its HTTP endpoint, its exit code."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[3]
T = TypeVar("T")


class ServiceProcess:
    """Starts `argv` with a clean HERON_* environment plus `env`; port 0 on loopback."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str]) -> None:
        full_env = {k: v for k, v in os.environ.items() if not k.upper().startswith("HERON_")}
        full_env.update(HERON_METRICS__HOST="127.0.0.1", HERON_METRICS__PORT="0")
        full_env.update(env)
        self.proc = subprocess.Popen(
            list(argv),
            cwd=REPO,
            env=full_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.port = 0

    def _read(self) -> None:
        if self.proc.stderr is not None:
            for line in self.proc.stderr:
                self._queue.put(line)

    def _collect(self) -> None:
        while True:
            try:
                self.lines.append(self._queue.get_nowait())
            except queue.Empty:
                return

    def records(self) -> list[dict[str, Any]]:
        """Every log line so far, parsed: a line that is not JSON fails the test here."""
        self._collect()
        return [json.loads(line) for line in self.lines]

    def wait_for(self, get: Callable[[], T | None], what: str, timeout: float = 15) -> T:
        """Poll `get` until it returns something truthy; fail if the process exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = get()
            if value:
                return value
            if self.proc.poll() is not None:
                self._collect()
                raise AssertionError(
                    f"exited {self.proc.returncode} before {what}:\n{''.join(self.lines)}"
                )
            time.sleep(0.02)
        self._collect()
        raise AssertionError(f"timed out waiting for {what}; log:\n{''.join(self.lines)}")

    def wait_log(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        return self.wait_for(
            lambda: next((r for r in self.records() if predicate(r)), None), "a log line"
        )

    def wait_running(self) -> None:
        """Until the endpoint is up (its port read from the log) and the loop runs."""
        self.port = int(self.wait_log(lambda r: "http_port" in r)["http_port"])
        self.wait_log(lambda r: r["message"] == "running")

    def get(self, path: str) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return int(r.status), r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def probe(self, path: str) -> tuple[int, dict[str, Any]]:
        status, body = self.get(path)
        return status, json.loads(body)

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 20) -> int:
        rc = self.proc.wait(timeout)
        self._reader.join(timeout=5)  # stderr is closed: the reader ends after the last line
        self._collect()
        return rc

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
