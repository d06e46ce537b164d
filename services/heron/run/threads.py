"""`heron run --in-process`: every stage of a plan as a thread of this process.

deepstream-app runs a whole pipeline in one process; on a laptop or a 2-core box that is what
costs least, since nothing is copied between processes and no Redis server shares the cores.
Each stage is the same service class `python -m heron.<service>` runs, with the settings the
plan gives it, driven by the same loop (`heron.core.runtime.serve`); only its transport
differs: the `MemoryTransport` every stage here shares.

Unlike the process supervisor, nothing is restarted: a stage that fails ends the run, as a
GStreamer element's error ends deepstream-app (a thread cannot be killed and started clean, and
queues in memory die with the process anyway).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from heron.core.bus import MemoryTransport
from heron.core.runtime import (
    EXIT_FAILED,
    EXIT_GRACE_EXPIRED,
    EXIT_OK,
    Service,
    ServiceContext,
    build_context,
    serve,
)
from heron.core.runtime.logs import JsonFormatter
from heron.run.plan import ServicePlan
from heron.run.supervisor import HOPELESS, GaveUpError

log = logging.getLogger(__name__)

STAGE_LOG = "in-process.log"  # in the run folder: every stage's lines, JSON, with its name

ServiceFactory = Callable[[ServiceContext[Any]], Service[Any]]


def service_class(module: str) -> ServiceFactory:
    """The service class `python -m <module>` runs (imported here: each pulls in its own heavy
    libraries, ONNX Runtime or GStreamer, only when the plan has it)."""
    if module == "heron.ingest":
        from heron.ingest.service import IngestService

        return IngestService
    if module == "heron.streammux":
        from heron.streammux.service import Streammux

        return Streammux
    if module == "heron.inference":
        from heron.inference.service import InferenceService

        return InferenceService
    if module == "heron.tracker":
        from heron.tracker.service import TrackerService

        return TrackerService
    if module == "heron.overlay":
        from heron.overlay.service import OverlayService

        return OverlayService
    if module == "heron.control":
        from heron.control.service import ControlService

        return ControlService
    raise ValueError(f"no in-process runner for {module!r}")


@dataclass
class StageThread:
    """One stage and the thread that runs it."""

    name: str
    ctx: ServiceContext[Any]
    factory: ServiceFactory
    thread: threading.Thread | None = None
    exit_code: int | None = None  # set when its loop returned
    stop_exit: int | None = None  # its exit code when the run stopped it, if it ran then
    _done: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        try:
            self.exit_code = serve(self.factory, self.ctx)
        finally:
            self._done.set()

    @property
    def finished(self) -> bool:
        return self._done.is_set()


class StageThreads:
    """Runs the plan's services as threads in order; `poll()` often, `stop()` once at the end.
    Offers what the run's loop asks of the process `Supervisor`."""

    def __init__(
        self, services: list[ServicePlan], transport: MemoryTransport | None = None
    ) -> None:
        self.transport = transport or MemoryTransport()
        self.stages = [self._stage(s) for s in services]

    def _stage(self, plan: ServicePlan) -> StageThread:
        name = plan.child.name
        # A thread cannot be killed as a process's watchdog would be: `stop()` stops waiting
        # for it after the same grace period and reports it as failed.
        expired = functools.partial(log.error, "%s: grace period over (exit %d)", name)
        ctx = build_context(
            plan.settings, CollectorRegistry(), exit=expired, transport=self.transport
        )
        return StageThread(name, ctx, service_class(plan.module))

    @property
    def restarts(self) -> dict[str, int]:
        return {s.name: 0 for s in self.stages}

    def pids(self) -> list[int]:
        return [os.getpid()]

    def failed_on_stop(self) -> list[tuple[str, int]]:
        return [
            (s.name, s.stop_exit)
            for s in self.stages
            if s.stop_exit is not None and s.stop_exit != EXIT_OK
        ]

    def start(self) -> None:
        for stage in self.stages:
            stage.thread = threading.Thread(target=stage.run, name=stage.name, daemon=True)
            stage.thread.start()

    def poll(self) -> None:
        """A stage whose loop ended with a failure ends the run."""
        for stage in self.stages:
            code = stage.exit_code
            if stage.finished and code is not None and code != EXIT_OK:
                what = HOPELESS.get(code, "see its log lines above")
                raise GaveUpError(
                    stage.name, f"exit code {code}: {what} (one process restarts nothing)"
                )

    def stop(self) -> None:
        """Ask each stage to stop, last first, and wait for it to finish its work."""
        for stage in reversed(self.stages):
            if stage.thread is None:
                continue
            running = not stage.finished
            stage.ctx.stop("the run is stopping")
            stage.thread.join(stage.ctx.settings.shutdown_grace_s + 1.0)
            if stage.thread.is_alive():
                log.error("%s is still running after its grace period; leaving it", stage.name)
                stage.stop_exit = EXIT_GRACE_EXPIRED
            elif running:
                stage.stop_exit = stage.exit_code if stage.exit_code is not None else EXIT_FAILED


class _StageName(logging.Filter):
    """Names the stage (the thread) of each line: all stages share one log here."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.stage = record.threadName
        return True


@contextlib.contextmanager
def stage_log(run_dir: Path, level: str, enabled: bool = True) -> Iterator[None]:
    """While the run lasts, every logger of the process also writes JSON lines to
    `run_dir/in-process.log` (what each service's own log file holds under processes)."""
    if not enabled:
        yield
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(run_dir / STAGE_LOG, encoding="utf-8")
    handler.setFormatter(JsonFormatter("heron-run"))
    handler.addFilter(_StageName())
    handler.setLevel(level)
    root = logging.getLogger()
    old_level = root.level
    # The stages' INFO lines must reach the file, so the root lets them through; handlers
    # already there (the terminal's) keep showing only what they showed before.
    others = [h for h in root.handlers if h.level == logging.NOTSET]
    for other in others:
        other.setLevel(old_level)
    root.addHandler(handler)
    root.setLevel(min(old_level or logging.WARNING, handler.level))
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        for other in others:
            other.setLevel(logging.NOTSET)
        handler.close()


def stage_log_lines(path: Path, stage: str) -> list[str]:
    """The lines of `stage` in an in-process log ([] without the file)."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return [line for line in lines if f'"stage": "{stage}"' in line]
