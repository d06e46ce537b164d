"""Progress of long, counted work (training steps, calibration batches, images scored) that shows
wherever the command's output goes: a bar on a terminal; elsewhere (a pipe, a pod's log) a plain
line every `every_s` seconds and when a stage ends, with the rate and the time left, so that
`kubectl logs` or a CI log is never silent for minutes. Given a logger, the lines are log records
instead, their numbers as structured fields (`extra=`): JSON logs carry them as keys."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, TaskID


class Reporter:
    """`stage(name)` starts a stage, `update(done, total)` moves it; use as a context manager.

    `update` may add `text` (for people: shown after the count, on the bar or the line) and
    `fields` (for machines: the log record's fields). `force=True` writes a line now, whatever
    `every_s` (the end of an epoch, say).
    """

    def __init__(
        self,
        console: Console,
        *,
        every_s: float = 10.0,
        unit: str = "",
        clock: Callable[[], float] = time.monotonic,
        log: logging.Logger | None = None,
    ) -> None:
        self.console, self.every_s, self.unit, self._clock = console, every_s, unit, clock
        self.log = log
        # A bar only for people at a terminal; log records never draw one.
        terminal = console.is_terminal and log is None
        self._bar: Progress | None = Progress(console=console, transient=True) if terminal else None
        self._task: TaskID | None = None
        self._stage = ""
        self._started = self._said = 0.0
        self._done, self._total = 0, 0
        self._text, self._fields = "", dict[str, Any]()
        self._unsaid = False  # moved since the last line

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
        self._text, self._fields, self._unsaid = "", {}, False
        self._started = self._said = self._clock()
        if self._bar is not None:
            if self._task is not None:
                self._bar.remove_task(self._task)
            self._task = self._bar.add_task(escape(name), total=None)
        else:
            self._say(f"{name} ...", {"stage": name})

    def update(
        self,
        done: int,
        total: int,
        *,
        text: str = "",
        fields: Mapping[str, Any] | None = None,
        force: bool = False,
    ) -> None:
        self._done, self._total, self._unsaid = done, total, True
        self._text, self._fields = text, dict(fields or {})
        if self._bar is not None and self._task is not None:
            described = f"{self._stage} · {text}" if text else self._stage
            self._bar.update(self._task, completed=done, total=total, description=escape(described))
        elif force or self._clock() - self._said >= self.every_s:
            self._line()

    def _end_line(self) -> None:
        if self._bar is None and self._stage and self._done and self._unsaid:
            self._line()

    def _line(self) -> None:
        now = self._clock()
        self._said, self._unsaid = now, False
        elapsed = now - self._started
        rate = self._done / elapsed if elapsed > 0 else 0.0
        left = (self._total - self._done) / rate if rate > 0 and self._total else None
        if left is not None and self._done >= self._total:
            left = None
        eta = f", {left:.0f} s left" if left is not None else ""
        unit = f" {self.unit}" if self.unit else ""
        note = f"; {self._text}" if self._text else ""
        numbers = {
            "stage": self._stage,
            "done": self._done,
            "total": self._total or None,
            "unit": self.unit or None,
            f"{self.unit or 'rate'}_per_s": round(rate, 3),
            "elapsed_s": round(elapsed, 1),
            "eta_s": None if left is None else round(left, 1),
        }
        self._say(
            f"{self._stage}: {self._done}/{self._total or '?'}{unit} ({rate:.2f}/s, "
            f"{elapsed:.0f} s){eta}{note}",
            {**numbers, **self._fields},
        )

    def _say(self, line: str, fields: dict[str, Any]) -> None:
        if self.log is not None:
            self.log.info("%s", line, extra=fields)
        else:
            # soft_wrap: one line however long, whatever the width rich guesses off a terminal.
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)
