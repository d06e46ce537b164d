"""Progress of long work: a bar on a terminal, plain lines with rate and time left elsewhere."""

from __future__ import annotations

import io
import re

from heron.core.progress import Reporter
from rich.console import Console


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_pipe_gets_a_line_every_interval_and_at_each_stages_end() -> None:
    clock = Clock()
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    with Reporter(console, every_s=10, unit="batches", clock=clock) as r:
        r.stage("calibrating")
        for done in range(1, 41):
            clock.now += 1.0  # one batch a second
            r.update(done, 40)
        r.stage("scoring FP32 on val/")
        clock.now += 5
    lines = out.getvalue().splitlines()
    assert lines[0] == "calibrating ..."
    # Every 10 s: done/total, the rate, the time so far and what is left.
    assert lines[1] == "calibrating: 10/40 batches (1.00/s, 10 s), 30 s left"
    assert lines[3] == "calibrating: 30/40 batches (1.00/s, 30 s), 10 s left"
    assert lines[4] == "calibrating: 40/40 batches (1.00/s, 40 s)"
    assert lines[-1] == "scoring FP32 on val/ ..."  # a stage with no count says only its name


def test_a_terminal_gets_a_bar_and_no_lines() -> None:
    out = io.StringIO()
    with Reporter(Console(file=out, force_terminal=True, width=100)) as r:
        r.stage("calibrating")
        r.update(3, 4)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    assert "calibrating: 3/4" not in text  # the bar, transient, not the pipe's lines
