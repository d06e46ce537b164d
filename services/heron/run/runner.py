"""`heron run`: a pipeline's services as supervised processes, with deepstream-app's perf lines.

One run: a Redis (the configured one, or a private redis-server), a run folder with every
service's settings file and log, the services started in order, then a loop that restarts what
crashes (the private Redis too, which keeps its data on disk), prints `**PERF:` lines every
`perf-measurement-interval-sec`, and ends when every source has ended and its last frame has
passed the last stage and the sinks — or on Ctrl-C/SIGTERM. Everything stops in reverse order;
leftover ring segments are unlinked; the private Redis stops.

The exit code is 0 only when nothing was lost: a frame a source sent that never left the last
stage, a service that failed while stopping (an unfinished recording), a Redis that stayed away
and a service given up on each make it 1, with the reason on the terminal.
"""

from __future__ import annotations

import logging
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Protocol

from heron.core.bus import BusSettings, BusUnavailableError, MemoryBus, MemoryTransport
from heron.core.config.pipeline_file import warning_line
from heron.core.plan.settings.overlay import OverlaySettings
from heron.core.runtime import redact_url
from heron.run.child_log import readable
from heron.run.options import RunOptions
from heron.run.outputs import Found, output_lines
from heron.run.perf import PerfMeter, PerfPrinter
from heron.run.plan import RunPlan, grpc_apis, plan_run
from heron.run.progress import BusWatcher, FrameSeen
from heron.run.redis_local import LocalRedis, RedisUnavailableError
from heron.run.shm import unlink_leftovers
from heron.run.supervisor import GaveUpError, RestartPolicy, Supervisor
from heron.run.threads import STAGE_LOG, StageThreads, stage_log, stage_log_lines

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_SIGNAL_BASE = 128  # stopped by signal N: exit 128 + N, as a shell reports it


@dataclass
class RunResult:
    exit_code: int
    reason: str
    frames: dict[str, int] = field(default_factory=dict)  # frames out of the last stage
    lost: dict[str, int] = field(default_factory=dict)  # frames a source sent that never left it
    restarts: dict[str, int] = field(default_factory=dict)
    latencies_s: dict[str, list[float]] = field(default_factory=dict)
    # time.monotonic() of the first and the last frame out of the last stage, any stream
    first_frame_at: float | None = None
    last_frame_at: float | None = None
    duration_s: float = 0.0
    run_dir: Path | None = None
    # Objects that left the last stage; None when the pipeline runs no detector.
    found: Found | None = field(default_factory=Found)


@dataclass
class RunRequest:
    config: Path
    run_dir: Path
    options: RunOptions = field(default_factory=RunOptions)
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    redis_url: str | None = None  # None: start a private redis-server
    drain_timeout_s: float = 30.0  # after every source ended, longest wait without progress
    max_duration_s: float | None = None  # stop after this long (live sources, benchmarks)
    redis_give_up_s: float = 60.0  # a Redis away this long (and not ours to restart) ends the run
    max_redis_restarts: int = 5  # the private Redis: restarts before the run gives up on it
    on_started: Callable[[RunPlan, Stages], None] | None = None  # tests, benchmarks


class Stages(Protocol):
    """What the run's loop asks of whatever runs the services: processes (`Supervisor`) or
    threads of this process (`StageThreads`, `--in-process`)."""

    @property
    def restarts(self) -> dict[str, int]: ...

    def start(self) -> None: ...

    def poll(self) -> None: ...

    def stop(self) -> None: ...

    def pids(self) -> list[int]: ...

    def failed_on_stop(self) -> list[tuple[str, int]]: ...


class _Stop:
    def __init__(self) -> None:
        self.signal: int | None = None

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        self.signal = signum


@contextmanager
def _signals(stop: _Stop) -> Iterator[None]:
    """SIGINT/SIGTERM ask the loop to stop (only possible in the main thread)."""
    try:
        old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: the caller stops us some other way
        yield
        return
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def run_pipeline(request: RunRequest, out: Callable[[str], None] = print) -> RunResult:
    """Run until done, interrupted or given up; returns what happened (never raises for those)."""
    started = time.monotonic()
    stop = _Stop()
    redis: LocalRedis | None = None
    supervisor: Stages | None = None
    watcher: BusWatcher | None = None
    plan: RunPlan | None = None
    in_process = request.options.in_process
    with _signals(stop), stage_log(request.run_dir, request.options.log_level, in_process):
        try:
            url = request.redis_url
            if url is None and not in_process:
                redis = LocalRedis(request.run_dir / "redis")  # picks its port, starts nothing
                url = redis.url
            # Planning reads the pipeline first: a bad config fails before anything starts.
            plan = plan_run(request.config, request.run_dir, request.options, url)
            if redis is not None:
                redis.start(fresh=True)  # a new run: nothing of an earlier one's streams
                out(f"started redis-server on 127.0.0.1:{redis.port}")
            _describe(plan, request.run_dir, out)
            if in_process:
                threads = StageThreads(plan.services, MemoryTransport())
                bus = MemoryBus(threads.transport.streams, BusSettings())
                watcher = BusWatcher(bus, request.options.pipeline, plan.final_stage, plan.streams)
                supervisor = threads
            else:
                assert url is not None
                watcher = BusWatcher.on_redis(
                    url, request.options.pipeline, plan.final_stage, plan.streams
                )
                supervisor = Supervisor(plan.children, request.policy, notify=out)
            supervisor.start()
            if request.on_started is not None:
                request.on_started(plan, supervisor)
            loop = _Loop(
                request=request,
                plan=plan,
                supervisor=supervisor,
                watcher=watcher,
                redis=redis,
                stop=stop,
                out=out,
            )
            result = loop.run()
        finally:
            if supervisor is not None:
                supervisor.stop()
                for name in unlink_leftovers(supervisor.pids()):
                    log.info("unlinked leftover ring segment %s", name)
            if watcher is not None:
                watcher.close()
            if redis is not None:
                redis.stop()
    if supervisor is not None:
        _failed_while_stopping(result, plan, supervisor, out)
        result.restarts = supervisor.restarts
    result.duration_s = time.monotonic() - started
    result.run_dir = request.run_dir
    if redis is not None and redis.restarts:
        result.restarts["redis-server"] = redis.restarts
    if plan is not None and not (plan.pipeline.primary_gie and plan.pipeline.primary_gie.enable):
        result.found = None  # nothing to find: no count, and no "found nothing" either
    _summary(result, out)
    if plan is not None:
        for line in output_lines(plan.pipeline, request.run_dir, _rtsp_host(plan)):
            out(line)
    return result


def _rtsp_host(plan: RunPlan) -> str:
    """Where a client reaches the overlay's RTSP server (any address: this host's loopback)."""
    for service in plan.services:
        settings = service.settings
        if isinstance(settings, OverlaySettings) and settings.rtsp_address not in ("0.0.0.0", "::"):
            return settings.rtsp_address
    return "127.0.0.1"


def _failed_while_stopping(
    result: RunResult, plan: RunPlan, supervisor: Stages, out: Callable[[str], None]
) -> None:
    """A service that exited non-zero when asked to stop did not finish its work (the overlay
    joins its recording then): a run that looked complete has failed after all."""
    failed = supervisor.failed_on_stop()
    if not failed or result.exit_code != EXIT_OK:
        return
    for name, _ in failed:
        _show_log_tail(plan, name, out)
    names = ", ".join(f"{name} (exit {code})" for name, code in failed)
    result.exit_code = EXIT_FAILED
    result.reason = f"{result.reason}, but {names} failed while stopping: see the log lines above"


def _describe(plan: RunPlan, run_dir: Path, out: Callable[[str], None]) -> None:
    names = ", ".join(s.child.name for s in plan.services)
    for finding in plan.warnings:  # services log them too, but nobody reads those first
        out(warning_line(finding))
    out(f"pipeline {plan.config.name}: {len(plan.streams)} stream(s), {plan.topology} topology")
    out(f"services: {names} (settings and logs in {run_dir})")
    for name in plan.skipped:
        out(f"warning: the config enables the {name} but heron.{name} is not installed: skipped")
    apis = grpc_apis(plan)
    if apis:
        out(f"gRPC: {', '.join(apis)}")


@dataclass(kw_only=True)
class _Loop:
    """The supervision loop of one run: children, the private Redis, progress, perf lines."""

    request: RunRequest
    plan: RunPlan
    supervisor: Stages
    watcher: BusWatcher
    redis: LocalRedis | None
    stop: _Stop
    out: Callable[[str], None]
    away_since: float | None = None  # when the bus stopped answering the watcher

    def run(self) -> RunResult:
        request, plan, watcher = self.request, self.plan, self.watcher
        now = time.monotonic()
        meter = PerfMeter(list(plan.streams), now)
        printer = PerfPrinter()
        next_report = now + plan.perf_interval_s
        last_progress = now
        downstream = 1 if any(s.child.name == "overlay" for s in plan.services) else 0
        deadline = None if request.max_duration_s is None else now + request.max_duration_s
        while True:
            if (ended := self._interrupted()) is not None:
                return ended
            seen = self._poll()
            if isinstance(seen, RunResult):
                return seen
            now = time.monotonic()
            for frame in seen:
                meter.add(frame.stream, now)
            if seen:
                last_progress = now
            if plan.pipeline.application.enable_perf_measurement and now >= next_report:
                for line in printer.lines(meter.report(now)):
                    self.out(line)
                next_report = now + plan.perf_interval_s
            if watcher.last_stage_done and watcher.downstream_drained(downstream):
                return _result(
                    EXIT_OK, "every source ended and its last frame reached the sinks", watcher
                )
            if deadline is not None and now >= deadline:
                return _result(EXIT_OK, f"ran for {request.max_duration_s:g} s as asked", watcher)
            if watcher.sources_ended and now - last_progress > request.drain_timeout_s:
                return _result(
                    EXIT_FAILED,
                    f"every source ended; no frame left the last stage for "
                    f"{request.drain_timeout_s:g} s, {_missing(watcher)}",
                    watcher,
                )

    def _interrupted(self) -> RunResult | None:
        """A stop signal, a child given up on, or a private Redis that will not come back."""
        if self.stop.signal is not None:
            name = signal.Signals(self.stop.signal).name
            return _result(EXIT_SIGNAL_BASE + self.stop.signal, f"stopped by {name}", self.watcher)
        try:
            self.supervisor.poll()
            self._keep_redis()
        except GaveUpError as e:
            _show_log_tail(self.plan, e.name, self.out)
            return _result(EXIT_FAILED, f"gave up on {e}", self.watcher)
        except RedisUnavailableError as e:
            return _result(EXIT_FAILED, f"gave up on redis-server: {e}", self.watcher)
        return None

    def _keep_redis(self) -> None:
        """Start the private Redis again when it died; it reloads what it had from disk."""
        redis = self.redis
        if redis is None or redis.alive:
            return
        code = redis.proc.returncode if redis.proc is not None else None
        if redis.restarts >= self.request.max_redis_restarts:
            raise RedisUnavailableError(
                f"it died (exit {code}) after {redis.restarts} restart(s); see "
                f"{redis.workdir / 'redis.log'}"
            )
        self.out(f"redis-server died (exit {code}); starting it again with its data")
        try:
            redis.restart()
        except RedisUnavailableError as e:
            # Killed again while it reloaded, say: the next pass tries once more, and the
            # restarts count toward max_redis_restarts like any other.
            self.out(f"redis-server did not come back: {e}")

    def _poll(self) -> list[FrameSeen] | RunResult:
        """Frames seen since the last poll; a failed result once Redis stayed away too long."""
        try:
            seen = self.watcher.poll(block_ms=100)
        except BusUnavailableError as e:
            now = time.monotonic()
            self.away_since = self.away_since or now
            # The private Redis is restarted by _keep_redis; one of the user's may come back.
            if self.redis is None and now - self.away_since > self.request.redis_give_up_s:
                url = redact_url(self.request.redis_url or "")
                return _result(
                    EXIT_FAILED,
                    f"Redis at {url} did not answer for {now - self.away_since:.0f} s: {e}",
                    self.watcher,
                )
            return []
        self.away_since = None
        return seen


def _missing(watcher: BusWatcher) -> str:
    parts = [
        f"{stream}: {p.lost} of {p.frames_in} missing"
        for stream, p in watcher.progress.items()
        if p.lost
    ]
    return "; ".join(parts) or "none missing"


def _result(code: int, reason: str, watcher: BusWatcher) -> RunResult:
    progress = watcher.progress.values()
    firsts = [p.first_seen for p in progress if p.first_seen is not None]
    lasts = [p.last_seen for p in progress if p.last_seen is not None]
    lost = {s: p.lost for s, p in watcher.progress.items() if p.lost}
    objects: Counter[str] = sum((p.objects for p in progress), Counter())
    found = Found(
        objects=dict(objects),
        frames_with_objects=sum(p.frames_with_objects for p in progress),
        frames=sum(p.delivered for p in progress),
        tracks=len(set[int]().union(*(p.track_ids for p in progress))),
    )
    if lost and code == EXIT_OK:  # a run is a success only when every frame made it
        code = EXIT_FAILED
    unread = unread_sources(watcher)
    if unread and code == EXIT_OK:  # nor when a source could not be read
        code, reason = EXIT_FAILED, f"{reason}, but {unread}"
    return RunResult(
        exit_code=code,
        reason=reason,
        frames={s: p.delivered for s, p in watcher.progress.items()},
        lost=lost,
        latencies_s={s: list(p.latencies_s) for s, p in watcher.progress.items()},
        first_frame_at=min(firsts, default=None),
        last_frame_at=max(lasts, default=None),
        found=found,
    )


def unread_sources(watcher: BusWatcher) -> str:
    """The sources ingest could not read (an unreadable or truncated file, a camera that
    failed), each with ingest's reason, or that ended without one frame; '' when none."""
    parts = [f"{s} failed: {p.error}" for s, p in watcher.progress.items() if p.error]
    parts += [
        f"{s} ended without a single frame (an empty file, or no video stream in it?)"
        for s, p in watcher.progress.items()
        if p.ended and p.frames_in == 0 and not p.error
    ]
    parts += [  # a live source still being retried when the run ended
        f"{s} could not be read ({p.attempts} attempt(s)): {p.unreadable}"
        for s, p in watcher.progress.items()
        if p.unreadable is not None and not p.error and not p.frames_out
    ]
    return "; ".join(parts)


def _show_log_tail(plan: RunPlan, name: str, out: Callable[[str], None], lines: int = 8) -> None:
    for service in plan.services:
        if service.child.name != name:
            continue
        path = service.child.log_file
        if path is not None and path.exists():  # a process's own log
            tail = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
        else:  # a thread's lines in the in-process log
            path = service.settings_file.parent / STAGE_LOG
            tail = stage_log_lines(path, name)[-lines:]
        if tail:
            out(f"last lines of {path}:")
            for line in tail:
                out(f"  {readable(line)}")


def _summary(result: RunResult, out: Callable[[str], None]) -> None:
    frames = ", ".join(f"{s}: {n}" for s, n in result.frames.items()) or "none"
    restarts = ", ".join(f"{s} {n}" for s, n in result.restarts.items() if n) or "none"
    lost = ", ".join(f"{s}: {n}" for s, n in result.lost.items()) or "none"
    out(f"** {result.reason}")
    out(f"frames out of the last stage: {frames}; restarts: {restarts}")
    out(f"frames lost: {lost}")
    if result.found is not None:
        out(result.found.line())
    out(f"run took {result.duration_s:.1f} s; exit code {result.exit_code}")
