"""Progress of long, counted work (calibration batches, images scored) that shows wherever the
command's output goes: a bar on a terminal; elsewhere (a pipe, a pod's log) a plain line every
`every_s` seconds and when a stage ends, with the rate and the time left, so that `kubectl logs`
or a CI log is never silent for minutes."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType

from rich.console import Console
from rich.progress import Progress, TaskID


class Reporter:
    """`stage(name)` starts a stage, `update(done, total)` moves it; use as a context manager."""

    def __init__(
        self,
        console: Console,
        *,
        every_s: float = 10.0,
        unit: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console, self.every_s, self.unit, self._clock = console, every_s, unit, clock
        self._bar: Progress | None = (
            Progress(console=console, transient=True) if (console.is_terminal) else None
        )
        self._task: TaskID | None = None
        self._stage = ""
        self._started = self._said = 0.0
        self._done, self._total = 0, 0

    def __enter__(self) -> Reporter:
        if self._bar is not None:
            self._bar.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is None:
            self._end_line()
        if self._bar is not None:
            self._bar.__exit__(kind, error, trace)

    def stage(self, name: str) -> None:
        """A new stage of the work: its name on the bar, or a line."""
        self._end_line()
        self._stage, self._done, self._total = name, 0, 0
        self._started = self._said = self._clock()
        if self._bar is not None:
            if self._task is not None:
                self._bar.remove_task(self._task)
            self._task = self._bar.add_task(name, total=None)
        else:
            self.console.print(f"{name} ...", markup=False, highlight=False)

    def update(self, done: int, total: int) -> None:
        self._done, self._total = done, total
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=done, total=total)
        elif self._clock() - self._said >= self.every_s:
            self._line()

    def _end_line(self) -> None:
        if self._bar is None and self._stage and self._done:
            self._line()

    def _line(self) -> None:
        now = self._clock()
        self._said = now
        elapsed = now - self._started
        rate = self._done / elapsed if elapsed > 0 else 0.0
        left = (self._total - self._done) / rate if rate > 0 and self._total else None
        eta = f", {left:.0f} s left" if left is not None and self._done < self._total else ""
        unit = f" {self.unit}" if self.unit else ""
        self.console.print(
            f"{self._stage}: {self._done}/{self._total or '?'}{unit} ({rate:.2f}/s, "
            f"{elapsed:.0f} s){eta}",
            markup=False,
            highlight=False,
        )
