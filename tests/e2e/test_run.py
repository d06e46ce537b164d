"""`heron run` end to end: real services, a real clip, a real (or private) redis-server."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
from heron.run.plan import has_main
from heron.run.shm import leftover_segments

from tests.e2e.conftest import Clip, count_frames, write_app

PERF = re.compile(r"^\*\*PERF:  (\d+\.\d\d) \((\d+\.\d\d)\)\t$")
REDIS_STARTED = re.compile(r"started redis-server on 127\.0\.0\.1:(\d+)")


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


def heron_run(config: Path, run_dir: Path, *extra: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}  # its own redis-server
    return subprocess.Popen(
        [
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


def test_run_survives_a_killed_service_and_exits_by_itself_after_every_frame(
    tmp_path: Path, model_dir: Path, clip: Clip
) -> None:
    """The chain on the clip (into an MP4 when the overlay is installed), its private Redis,
    inference SIGKILLed mid-run: restarted, and every frame still reaches the end."""
    output = tmp_path / "out.mp4" if has_main("heron.overlay") else None
    config = write_app(tmp_path, model_dir, clip.path.as_uri(), output=output)
    proc = heron_run(config, tmp_path / "run")
    out = Output(proc)
    try:
        port = int(out.wait_for(REDIS_STARTED).group(1))
        out.wait_for(re.compile(r"^\*\*PERF:  [1-9]"), timeout=90)  # frames are flowing
        inference = service_process(proc.pid, "heron.inference")
        inference.kill()
        assert proc.wait(timeout=120) == 0, "\n".join(out.rest())
    finally:
        proc.kill()
    lines = out.rest()
    assert "**PERF:  FPS 0 (Avg)\t" in lines
    assert sum(bool(PERF.match(line)) for line in lines) >= 2, lines
    summary = f"frames out of the last stage: source-0: {clip.frames}; restarts: inference 1"
    assert summary in lines
    assert any("every source ended and its last frame reached the sinks" in line for line in lines)
    assert not inference.is_running()
    assert port_closed(port), "the private redis-server is still running"
    for name in ("ingest", "inference"):  # services log to the run folder, restarts appended
        assert (tmp_path / "run" / f"{name}.log").stat().st_size > 0
    if output is not None:
        assert count_frames(output) == clip.frames


def service_process(pid: int, module: str) -> psutil.Process:
    for child in psutil.Process(pid).children(recursive=True):
        if module in child.cmdline():
            return child
    raise AssertionError(f"no {module} process under pid {pid}")


def test_sigterm_stops_every_process_and_cleans_up(
    tmp_path: Path, model_dir: Path, short_clip: Clip
) -> None:
    # file-loop: a source that never ends, through the muxer (the live topology).
    config = write_app(tmp_path, model_dir, short_clip.path.as_uri(), loop=True)
    proc = heron_run(config, tmp_path / "run")
    out = Output(proc)
    try:
        out.wait_for(re.compile(r"^\*\*PERF:  [1-9]"), timeout=90)
        family = psutil.Process(proc.pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in family)
        for part in ("heron.ingest", "heron.ingest.streammux", "heron.inference", "redis-server"):
            assert part in names
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    finally:
        proc.kill()
    assert code == 128 + signal.SIGTERM
    assert any("stopped by SIGTERM" in line for line in out.rest())
    _, alive = psutil.wait_procs(family, timeout=5)
    assert not alive, f"orphans: {alive}"
    assert leftover_segments([p.pid for p in family]) == []
