"""Start, watch, restart and stop a fixed list of child processes, like a tiny init.

Children start in order and stop in reverse order. A child that dies is started again after an
exponential backoff, and the reason it gave (the last error in its log) is said on the terminal.
The run gives up on a child, and then so does the whole run, when it keeps dying soon after its
start, or keeps dying before it was ever ready (its readiness URL never answered "ready" since
its start: a dependency that stays down, however long each start waits for it). Every child gets
a process group of its own (so Ctrl-C in the terminal reaches only the supervisor, which stops
the children in order) and, on Linux, a parent-death signal, so even a supervisor killed with
SIGKILL leaves no orphans behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from heron.core.runtime import EXIT_BAD_SETTINGS, EXIT_FATAL
from heron.run.child_log import last_error, read_since

log = logging.getLogger(__name__)

# A child that exits with one of these codes cannot be helped by starting it again (its
# settings were refused, or it hit a FatalError), so the run gives up at once.
HOPELESS = {
    EXIT_BAD_SETTINGS: "its settings were refused; see its log",
    EXIT_FATAL: "it failed in a way a restart cannot mend; see its log",
}
_PR_SET_PDEATHSIG = 1
PROBE_TIMEOUT_S = 2.0  # one readiness request (its checks PING Redis, ask Triton: < 1.5 s)


class RestartPolicy(BaseModel):
    """When a crashed child is started again, and when the supervisor stops trying."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    initial_backoff_s: float = Field(0.5, gt=0, description="Wait before the first restart.")
    max_backoff_s: float = Field(10.0, gt=0, description="Longest wait between restarts.")
    fast_crash_s: float = Field(
        10.0, gt=0, description="A crash within this long of the start counts as fast."
    )
    max_fast_crashes: int = Field(
        5, ge=1, description="Fast crashes in a row after which the run gives up."
    )
    max_unready_crashes: int = Field(
        3,
        ge=1,
        description="Crashes in a row of a child that was never ready in between (its readiness "
        "URL never answered ready), however long each start took, after which the run gives up.",
    )
    ready_probe_s: float = Field(
        0.5, gt=0, description="How often a child not ready yet is asked whether it is."
    )
    stop_timeout_s: float = Field(
        15.0, gt=0, description="How long one child may take to stop before it is killed."
    )

    @model_validator(mode="after")
    def _bounds(self) -> RestartPolicy:
        if self.max_backoff_s < self.initial_backoff_s:
            raise ValueError(
                f"max_backoff_s ({self.max_backoff_s}) must be >= initial_backoff_s "
                f"({self.initial_backoff_s})"
            )
        return self


@dataclass(frozen=True)
class ChildSpec:
    """One process to run: its name in messages, its command line, extra environment, log."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    log_file: Path | None = None  # stdout+stderr go here (appended across restarts)
    cwd: Path | None = None
    # GET answering 200 with at least one check once the child is ready (a service's /readyz);
    # None: readiness unknown, and only fast crashes make the run give up on the child.
    ready_url: str | None = None


class ChildState(StrEnum):
    PENDING = "pending"  # not started yet
    RUNNING = "running"
    BACKOFF = "backoff"  # crashed, waiting to be started again
    FINISHED = "finished"  # exited 0 on its own: done, not restarted
    FAILED = "failed"  # given up on
    STOPPED = "stopped"  # stopped by the supervisor


class GaveUpError(RuntimeError):
    """A child crashed too often (or was refused its settings); the run cannot go on."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


@dataclass
class Child:
    spec: ChildSpec
    proc: subprocess.Popen[bytes] | None = None
    state: ChildState = ChildState.PENDING
    started_at: float = 0.0
    restarts: int = 0
    fast_crashes: int = 0
    unready_crashes: int = 0  # crashes in a row without being ready since its start
    unready_since: float = 0.0  # when the first start of that streak began
    ready: bool = False  # this start answered ready at least once
    next_start_at: float = 0.0
    next_probe_at: float = 0.0
    probe: Future[bool] | None = None
    last_exit: int | None = None
    last_reason: str | None = None  # the last error its log had when it last exited
    log_offset: int = 0  # where this start's lines begin in its log file
    stop_exit: int | None = None  # its exit code when the supervisor stopped it, if it ran then
    pids: list[int] = field(default_factory=list)  # every pid it ever had
    _log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None


def _libc_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    return prctl


# Resolved once in the parent, so the child runs no import or lookup between fork and exec.
_PRCTL = _libc_prctl()


def die_with_parent(sig: int = signal.SIGTERM, parent: int | None = None) -> Callable[[], None]:
    """A preexec_fn: the child gets `sig` when this process (or `parent`) dies, however it dies.

    Made in the parent, so it knows the parent's pid: a parent that died between fork and the
    prctl call sends no signal any more, and the child, seeing another parent, exits at once.
    """
    parent_pid = os.getpid() if parent is None else parent

    def hook() -> None:  # in the child, between fork and exec: syscalls only, no imports
        if _PRCTL is None:
            return
        _PRCTL(_PR_SET_PDEATHSIG, sig)
        if os.getppid() != parent_pid:
            os._exit(128 + sig)

    return hook


def _warn(message: str) -> None:
    log.warning("%s", message)


class Supervisor:
    """Runs `specs` in order; call `poll()` often, `stop()` once at the end. `notify` gets what
    a person watching should read (a child died, and why); by default a logged warning."""

    def __init__(
        self,
        specs: list[ChildSpec],
        policy: RestartPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        notify: Callable[[str], None] = _warn,
    ) -> None:
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"child names must be unique, got {names}")
        self.policy = policy or RestartPolicy()
        self.children = [Child(s) for s in specs]
        self.clock = clock
        self.notify = notify
        self._probes: ThreadPoolExecutor | None = None  # made when a child needs asking

    def child(self, name: str) -> Child:
        for c in self.children:
            if c.spec.name == name:
                return c
        raise KeyError(f"no child named {name!r}; children: {[c.spec.name for c in self.children]}")

    @property
    def restarts(self) -> dict[str, int]:
        return {c.spec.name: c.restarts for c in self.children}

    def pids(self) -> list[int]:
        """Every pid any child ever had (their leftover ring segments carry them)."""
        return [p for c in self.children for p in c.pids]

    def failed_on_stop(self) -> list[tuple[str, int]]:
        """Children that exited non-zero when stopped: they did not finish their work."""
        return [
            (c.spec.name, c.stop_exit)
            for c in self.children
            if c.stop_exit is not None and c.stop_exit != 0
        ]

    def start(self) -> None:
        for c in self.children:
            self._spawn(c)

    def poll(self) -> None:
        """Notice exits, schedule and make restarts; raises GaveUpError when one is hopeless."""
        now = self.clock()
        for c in self.children:
            if c.state is ChildState.RUNNING and c.proc is not None:
                self._probe(c, now)  # first: an answer that came in counts for this start
                code = c.proc.poll()
                if code is not None:
                    self._exited(c, code, now)
            if c.state is ChildState.BACKOFF and now >= c.next_start_at:
                c.restarts += 1
                log.info("restarting %s (restart %d)", c.spec.name, c.restarts)
                self._spawn(c)

    def stop(self) -> None:
        """SIGTERM the children in reverse order, each waited for; kill what will not go."""
        for c in reversed(self.children):
            self._stop_one(c)
        if self._probes is not None:
            self._probes.shutdown(wait=False, cancel_futures=True)
            self._probes = None

    # -- internals --------------------------------------------------------------------------

    def _spawn(self, c: Child) -> None:
        env = {**os.environ, **c.spec.env}
        if c.spec.log_file is not None and c._log is None:
            c.spec.log_file.parent.mkdir(parents=True, exist_ok=True)
            c._log = c.spec.log_file.open("ab")
        if c.spec.log_file is not None:
            c.log_offset = c.spec.log_file.stat().st_size
        out = c._log if c._log is not None else subprocess.DEVNULL
        c.proc = subprocess.Popen(
            c.spec.argv,
            env=env,
            cwd=c.spec.cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # Only a pre-resolved libc call and two syscalls run between fork and exec (no
            # Python locks are taken), which is what makes preexec_fn safe beside threads here.
            # SIGTERM: a service stops as on Ctrl-C (the overlay closes its recording).
            preexec_fn=die_with_parent(signal.SIGTERM),  # noqa: PLW1509
        )
        c.pids.append(c.proc.pid)
        c.state = ChildState.RUNNING
        c.started_at = self.clock()
        c.ready, c.probe, c.next_probe_at = False, None, c.started_at  # an old answer is void
        log.info("started %s (pid %d)", c.spec.name, c.proc.pid)

    def _probe(self, c: Child, now: float) -> None:
        """Ask a child not ready yet whether it is now, from a thread: /readyz runs the
        service's checks, and the supervision loop must not wait for them."""
        if c.ready or c.spec.ready_url is None:
            return
        probe = c.probe
        if probe is not None:
            if not probe.done():
                return
            c.probe = None
            if probe.result():
                c.ready = True
                c.unready_crashes = 0
                log.info("%s is ready", c.spec.name)
                return
        if now >= c.next_probe_at:
            if self._probes is None:
                workers = min(8, len(self.children))
                self._probes = ThreadPoolExecutor(workers, thread_name_prefix="ready-probe")
            c.next_probe_at = now + self.policy.ready_probe_s
            c.probe = self._probes.submit(answers_ready, c.spec.ready_url)

    def _exited(self, c: Child, code: int, now: float) -> None:
        c.last_exit = code
        if code == 0:
            c.state = ChildState.FINISHED
            log.info("%s finished (exit 0)", c.spec.name)
            return
        what = f"signal {-code}" if code < 0 else f"exit code {code}"
        c.last_reason = self._reason(c)
        said = f"{what}: {c.last_reason}" if c.last_reason else what
        if code in HOPELESS:
            c.state = ChildState.FAILED
            raise GaveUpError(c.spec.name, f"{said}; {HOPELESS[code]}")
        p = self.policy
        fast = now - c.started_at < p.fast_crash_s
        c.fast_crashes = c.fast_crashes + 1 if fast else 0
        if c.fast_crashes >= p.max_fast_crashes:
            c.state = ChildState.FAILED
            raise GaveUpError(
                c.spec.name,
                f"it crashed {c.fast_crashes} times in a row within {p.fast_crash_s:g} s of "
                f"starting (the last time: {said})",
            )
        counted = c.spec.ready_url is not None and not c.ready
        if counted:
            c.unready_since = c.started_at if c.unready_crashes == 0 else c.unready_since
            c.unready_crashes += 1
        if counted and c.unready_crashes >= p.max_unready_crashes:
            c.state = ChildState.FAILED
            raise GaveUpError(
                c.spec.name,
                f"it crashed {c.unready_crashes} times in a row in {now - c.unready_since:.0f} s "
                f"without ever becoming ready (the last time: {said})",
            )
        backoff = min(
            p.initial_backoff_s * 2 ** max(c.fast_crashes - 1, c.unready_crashes - 1, 0),
            p.max_backoff_s,
        )
        c.state = ChildState.BACKOFF
        c.next_start_at = now + backoff
        streak = (
            f" ({c.unready_crashes} of {p.max_unready_crashes} crashes in a row before it "
            "became ready)"
            if counted
            else ""
        )
        self.notify(f"{c.spec.name} died ({said}); restarting in {backoff:g} s{streak}")

    def _reason(self, c: Child) -> str | None:
        """The last error this start of the child logged (None without a log or an error)."""
        if c.spec.log_file is None:
            return None
        return last_error(read_since(c.spec.log_file, c.log_offset))

    def _stop_one(self, c: Child) -> None:
        proc = c.proc
        running = proc is not None and proc.poll() is None
        if proc is not None and running:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=self.policy.stop_timeout_s)
            except subprocess.TimeoutExpired:
                log.warning(
                    "%s did not stop within %.0f s: killing it",
                    c.spec.name,
                    self.policy.stop_timeout_s,
                )
        if proc is not None:
            # Whatever is left in its process group (the child, or helpers it started) goes.
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
            c.last_exit = proc.returncode
            if running:
                c.stop_exit = proc.returncode
        if c.state in (ChildState.RUNNING, ChildState.BACKOFF, ChildState.PENDING):
            c.state = ChildState.STOPPED
        if c._log is not None:
            c._log.close()
            c._log = None


def answers_ready(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """GET `url` (a service's /readyz): 200 with at least one check is ready. A service
    answers 200 with no check in the moment between serving /readyz and registering its
    checks, which says nothing yet. Asked without any proxy: the URL is the child's own."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout_s)
    try:
        conn.request("GET", parts.path or "/")
        response = conn.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException):  # not listening yet, gone, too slow
        return False
    finally:
        conn.close()
    if response.status != http.client.OK:
        return False
    try:
        answer = json.loads(body)
    except ValueError:
        return False
    return isinstance(answer, dict) and bool(answer.get("checks"))


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
        os.killpg(pgid, sig)
