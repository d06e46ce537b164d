"""Driving `heron run` as a user does: a subprocess, its output lines, its service processes."""

from __future__ import annotations

import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil


class Output:
    """A process's stdout lines, collected by a thread so a test can wait with a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        assert proc.stdout is not None
        threading.Thread(target=self._read, args=(proc.stdout,), daemon=True).start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern: re.Pattern[str], timeout: float = 60.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines:
                m = pattern.search(line)
                if m:
                    return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line matched {pattern.pattern!r}; got {self.lines}")
            try:
                got = self._queue.get(timeout=left)
            except queue.Empty:
                continue
            if got is None:
                raise AssertionError(
                    f"output ended; no line matched {pattern.pattern!r}: {self.lines}"
                )
            self.lines.append(got)

    def rest(self, timeout: float = 30.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                got = self._queue.get(timeout=deadline - time.monotonic())
            except queue.Empty:
                break
            if got is None:
                break
            self.lines.append(got)
        return self.lines


def heron_run(
    config: Path, run_dir: Path, *extra: str, prefix: tuple[str, ...] = ()
) -> subprocess.Popen[str]:
    """`heron run` in a session of its own; `prefix` wraps it (`unshare -m sh -c ...`). Its
    gRPC API gets a free port unless `extra` names one: runs never fight over :50051."""
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}  # its own redis-server
    if "--grpc-listen" not in extra:
        extra = (*extra, "--grpc-listen", "127.0.0.1:0")
    if "--detector-listen" not in extra:
        extra = (*extra, "--detector-listen", "127.0.0.1:0")
    return subprocess.Popen(
        [
            *prefix,
            sys.executable,
            "-m",
            "heron.run",
            "run",
            "-c",
            str(config),
            "--run-dir",
            str(run_dir),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )


def port_closed(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def service_process(pid: int, module: str) -> psutil.Process:
    for child in psutil.Process(pid).children(recursive=True):
        if module in child.cmdline():
            return child
    raise AssertionError(f"no {module} process under pid {pid}")
