"""Progress of long work: a bar on a terminal, plain lines with rate and time left elsewhere."""

from __future__ import annotations

import io
import logging
import re

import pytest
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


def test_an_update_adds_its_text_and_a_forced_one_writes_at_once() -> None:
    clock = Clock()
    out = io.StringIO()
    with Reporter(Console(file=out, width=40), every_s=30, unit="steps", clock=clock) as r:
        r.stage("train")
        clock.now += 2
        r.update(1, 4, text="epoch 1/2, loss 0.5")  # not due: 2 s of 30
        clock.now += 2
        r.update(2, 4, text="epoch 1/2 done, loss 0.25", force=True)  # an epoch's end
    lines = out.getvalue().splitlines()
    # One line each however narrow the console, and none repeated at the end.
    assert lines == [
        "train ...",
        "train: 2/4 steps (0.50/s, 4 s), 4 s left; epoch 1/2 done, loss 0.25",
    ]


def test_with_a_logger_lines_are_records_with_the_numbers_as_fields(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    log = logging.getLogger("tests.progress")
    out = io.StringIO()
    # A logger draws no bar, even on a terminal: JSON logs want records.
    console = Console(file=out, force_terminal=True)
    with (
        caplog.at_level(logging.INFO, "tests.progress"),
        Reporter(console, every_s=10, unit="steps", clock=clock, log=log) as r,
    ):
        r.stage("train")
        for done in range(1, 4):
            clock.now += 5
            r.update(done, 6, fields={"epoch": 1, "loss": 0.5})
    assert out.getvalue() == ""
    records = [(r.getMessage(), r) for r in caplog.records]
    assert [m for m, _ in records] == [
        "train ...",
        "train: 2/6 steps (0.20/s, 10 s), 20 s left",
        "train: 3/6 steps (0.20/s, 15 s), 15 s left",  # the stage's end
    ]
    fields = vars(records[-1][1])  # what extra= set on the record
    assert {k: fields[k] for k in ("done", "total", "unit", "steps_per_s", "eta_s")} == {
        "done": 3, "total": 6, "unit": "steps", "steps_per_s": 0.2, "eta_s": 15.0,
    }  # fmt: skip
    assert (fields["epoch"], fields["loss"], fields["elapsed_s"]) == (1, 0.5, 15.0)
