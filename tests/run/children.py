"""Tiny child programs for the supervisor tests: real processes, a few lines of Python each."""

from __future__ import annotations

import sys
from pathlib import Path


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def sleeper() -> list[str]:
    return python("import time\nwhile True: time.sleep(0.05)")


def crash_once(marker: Path) -> list[str]:
    """Exits 1 on its first start (no marker yet), then runs until stopped."""
    return python(
        "import pathlib, sys, time\n"
        f"m = pathlib.Path({str(marker)!r})\n"
        "if not m.exists():\n"
        "    m.write_text('started')\n"
        "    sys.exit(1)\n"
        "while True: time.sleep(0.05)\n"
    )


def exits_with(code: int) -> list[str]:
    return python(f"import sys; sys.exit({code})")


def records_sigterm(name: str, journal: Path) -> list[str]:
    """Appends its name to `journal` on SIGTERM, after a short pause, then exits 0."""
    return python(
        "import pathlib, signal, sys, time\n"
        "def stop(*_):\n"
        "    time.sleep(0.1)\n"
        f"    with open({str(journal)!r}, 'a') as f: f.write({name!r} + '\\n')\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "while True: time.sleep(0.05)\n"
    )


def ignores_sigterm(pid_file: Path) -> list[str]:
    """Ignores SIGTERM and starts a grandchild that would outlive it; writes both pids."""
    return python(
        "import os, signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "g = subprocess.Popen([sys.executable, '-c', "
        "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)'])\n"
        f"open({str(pid_file)!r}, 'w').write(f'{{os.getpid()}} {{g.pid}}')\n"
        "while True: time.sleep(0.05)\n"
    )


def serves_readiness(  # noqa: PLR0917 -- each argument is one knob of the fake service
    port: int, status: int, checks: int, live_s: float, error: str | None = None, code: int = 1
) -> list[str]:
    """A service's /readyz on `port` answering `status` with `checks` checks, for `live_s`
    seconds; then it logs `error` as a service's JSON error record (when given) and exits."""
    return python(
        "import http.server, json, sys, threading, time\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        f"        body = json.dumps({{'checks': [{{'name': 'c'}}] * {checks}}}).encode()\n"
        f"        self.send_response({status})\n"
        "        self.send_header('Content-Length', str(len(body)))\n"
        "        self.end_headers()\n"
        "        self.wfile.write(body)\n"
        "    def log_message(self, *_): pass\n"
        f"s = http.server.HTTPServer(('127.0.0.1', {port}), H)\n"
        "threading.Thread(target=s.serve_forever, daemon=True).start()\n"
        f"time.sleep({live_s})\n"
        + (
            f"print(json.dumps({{'level': 'ERROR', 'message': {error!r}}}), flush=True)\n"
            if error is not None
            else ""
        )
        + f"sys.exit({code})\n"
    )


def logs_then_exits(lines: list[str], code: int = 1, after_s: float = 0.0) -> list[str]:
    """Prints `lines` (a log as a service writes it), waits `after_s`, exits with `code`."""
    text = "".join(line + "\n" for line in lines)
    return python(
        f"import sys, time\nsys.stdout.write({text!r})\n"
        f"sys.stdout.flush()\ntime.sleep({after_s})\nsys.exit({code})\n"
    )
