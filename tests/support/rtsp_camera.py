"""An RTSP camera as a process of its own, so a test can kill, freeze and restart it the hard way.

    camera = CameraProcess(port, fps=10)
    camera.start()        # python -m tests.support.rtsp_camera; returns once it serves
    camera.kill()         # SIGKILL: connections reset, the port refuses until start() again
    camera.stall()        # SIGSTOP: connections stay open and silent (a frozen camera)
    camera.resume()       # SIGCONT
    camera.close()        # whatever it is doing, it is gone (for a test's `finally`)

The process serves tests.support.rtsp_source's numbered pattern through Heron's RTSP server (the
camera the in-process tests use), at a rate that holds under load; only the fault injection
differs: a SIGKILLed or SIGSTOPped process cannot tidy up, as a real camera that
loses power or hangs cannot.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the camera process's own imports: a test can start one without them
    from heron.overlay.sinks.rtsp import RtspServer

READY = "serving "  # the child's first stdout line: "serving rtsp://127.0.0.1:PORT/ds-test"
REPO = Path(__file__).resolve().parents[2]  # `-m tests.support...` needs the repo on sys.path
MAX_CATCH_UP_S = 0.5  # behind by more: a freeze, whose frames are skipped


class CameraProcess:
    def __init__(self, port: int, *, fps: float, width: int = 320, height: int = 240) -> None:
        self.port = port
        self.url = f"rtsp://127.0.0.1:{port}/ds-test"
        self._args = ["--port", str(port), "--fps", str(fps), "--size", f"{width}x{height}"]
        self.proc: subprocess.Popen[str] | None = None
        self.output: list[str] = []  # the current process's lines

    def start(self, timeout_s: float = 30.0) -> None:
        """Start serving on the port (again) and wait until it listens."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.rtsp_camera", *self._args],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # a signal to the test's group never reaches it, and back
        )
        self.output = []
        ready = threading.Event()
        threading.Thread(
            target=_drain, args=(self.proc, self.output, ready), name="camera-output", daemon=True
        ).start()
        ready.wait(timeout_s)
        if not (self.output and self.output[0].startswith(READY)):
            self.close()
            said = "\n".join(self.output) or f"nothing within {timeout_s:g} s"
            raise RuntimeError(f"the RTSP camera on port {self.port} did not start:\n{said}")

    def kill(self) -> None:
        self._signal(signal.SIGKILL)
        assert self.proc is not None
        self.proc.wait(timeout=10)

    def stall(self) -> None:
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # SIGKILL works on a stopped process too
            self.proc.wait(timeout=10)

    def _signal(self, signum: signal.Signals) -> None:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"the RTSP camera on port {self.port} is not running")
        os.kill(self.proc.pid, signum)


def _drain(proc: subprocess.Popen[str], lines: list[str], ready: threading.Event) -> None:
    """Collect the child's output; `ready` once its first line (or its end) came. A thread, so
    a hung start cannot hang the test and a chatty child never fills the pipe."""
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if lines[0].startswith(READY):
            ready.set()
    ready.set()  # it ended without serving: every line of its traceback is in


def push_at_rate(
    server: RtspServer, fps: float, width: int, height: int, stopped: threading.Event
) -> None:
    """Push numbered pattern frames on a fixed schedule until `stopped`.

    A frame pushed late (the machine is loaded) is followed by the next one sooner, so the
    rate over a second stays `fps`: the faults test compares other streams' rates to 5 %, and a
    camera that loses time would look like ingest losing frames. After a freeze (SIGSTOP) the
    frames of that time are skipped, as a real camera's are, not sent in one burst.
    """
    from tests.support.rtsp_source import pattern_frame

    period = 1.0 / fps
    number = 0
    due = time.monotonic()
    while not stopped.is_set():
        server.push(pattern_frame(number, width, height))
        number += 1
        due += period
        now = time.monotonic()
        if now - due > MAX_CATCH_UP_S:
            due = now
        stopped.wait(max(0.0, due - now))


def main() -> None:
    from heron.overlay.sinks.rtsp import RtspServer

    parser = argparse.ArgumentParser(description="Serve a numbered test pattern over RTSP.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--fps", type=float, required=True)
    parser.add_argument("--size", default="320x240")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with RtspServer(args.port, "/ds-test", width=width, height=height, fps=args.fps) as server:
        print(f"{READY}{server.url}", flush=True)
        push_at_rate(server, args.fps, width, height, stopped)


if __name__ == "__main__":
    main()
