"""Runs an engine command in a Job's container and leaves its result where the operator reads it.

    python3 -m heron_operator.job_report build -- heron build-engine ... -o /models/repo
    python3 -m heron_operator.job_report gate --report /models/x/gate.json -- heron calibrate ...
    python3 -m heron_operator.job_report train --report /artifacts/r/report.json -- \
        python3 -m heron.training ...

The command's output goes on to the container's log; when it ends, one JSON object (this
module's `JobReport`) is written to the termination-message file, and the exit status is the
command's. The operator reads it back from the pod's
`status.containerStatuses[].state.terminated.message`, so no volume of the operator's is needed
and `kubectl describe pod` shows it. It runs in the training and engine images, which have no
kopf: it uses the standard library and typer, a dependency of every `heron` install (the
package this module ships in), as every Heron command line is parsed.

A command's lines are plain text or JSON log lines (heron.core.runtime.logs' format, `python -m
heron.training --log-format json`): the report and the steps read a JSON line's message.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

TERMINATION_LOG = "/dev/termination-log"
MESSAGE_LIMIT = 4096  # bytes the kubelet keeps of a termination message
_TAIL_LINES = 20
_PLAN_ARROW = " → "  # `heron build-engine` ends with "built ... plan (...) → <plan>"
# `python -m heron.training` prints this line as each step starts (heron.training.job_cli), or
# logs it as a JSON line's message with `--log-format json`.
STEP_PREFIX = "heron-step: "
PROG = "python3 -m heron_operator.job_report"
# What a training's report.json gives the TrainingRun's status (its own names).
_TRAIN_KEYS = ("ap", "mAP", "int8", "artifacts")


@dataclass(frozen=True)
class JobReport:
    ok: bool | None  # None: not a report of this module (the log tail kubelet fell back to)
    exit_code: int | None = None
    plan: str | None = None
    ap_drop: float | None = None  # the largest INT8 mAP loss, a fraction (0.02 = 2 points)
    passed: bool | None = None  # the gate's verdict
    message: str = ""
    step: str | None = None  # training: the step running when the command ended
    train: dict[str, Any] | None = None  # training: report.json's ap, mAP, int8, artifacts

    def to_message(self) -> str:
        body: dict[str, Any] = {"ok": self.ok, "exitCode": self.exit_code}
        if self.plan is not None:
            body["plan"] = self.plan
        if self.passed is not None or self.ap_drop is not None:
            body["gate"] = {"apDrop": self.ap_drop, "passed": self.passed}
        if self.step is not None:
            body["step"] = self.step
        if self.train is not None:
            body["train"] = _fitting(self.train)
        body["message"] = ""
        room = MESSAGE_LIMIT - len(json.dumps(body).encode()) - 16
        message = self.message.encode()[-room:].decode(errors="ignore") if room > 0 else ""
        body["message"] = message
        return json.dumps(body)

    @classmethod
    def from_message(cls, text: str) -> JobReport:
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if not isinstance(body, dict) or "ok" not in body:
            return cls(ok=None, message=text.strip())
        gate = body.get("gate") or {}
        drop = gate.get("apDrop")
        return cls(
            ok=bool(body["ok"]),
            exit_code=body.get("exitCode"),
            plan=body.get("plan"),
            ap_drop=None if drop is None else float(drop),
            passed=gate.get("passed"),
            message=str(body.get("message") or ""),
            step=body.get("step"),
            train=body.get("train") if isinstance(body.get("train"), dict) else None,
        )


def _fitting(train: dict[str, Any]) -> dict[str, Any]:
    """`train` as it fits in a termination message: per-class APs go first when it is too
    long (mAP, the INT8 drop and the artifacts stay)."""
    if len(json.dumps(train).encode()) <= MESSAGE_LIMIT // 2:
        return train
    int8 = train.get("int8")
    slim = {k: v for k, v in train.items() if k != "ap"}
    if isinstance(int8, dict):
        slim["int8"] = {k: v for k, v in int8.items() if k != "ap"}
    return slim


def readable(line: str) -> str:
    """A JSON log line's message (heron.core.runtime.logs' format); any other line as it is."""
    if line.startswith("{"):
        try:
            body = json.loads(line)
        except ValueError:
            return line
        message = body.get("message") if isinstance(body, dict) else None
        if isinstance(message, str):
            return message
    return line


def step_of_line(line: str) -> str | None:
    """The step a line marks: `heron-step: <step>` at its start, or as a JSON log line's
    message; None for any other line (the text quoted inside a line marks nothing)."""
    text = readable(line.rstrip("\n"))
    return text[len(STEP_PREFIX) :].strip() if text.startswith(STEP_PREFIX) else None


def run(
    command: Sequence[str], tail: collections.deque[str], steps: list[str] | None = None
) -> int:
    """Run `command`, passing its output through and keeping its last lines in `tail` (a JSON
    log line's message, not the object) and the steps it marked in `steps`."""
    env = {"COLUMNS": "4096", **os.environ}  # rich wraps at 80 columns without a terminal
    process = subprocess.Popen(
        list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    signal.signal(signal.SIGTERM, lambda *_: process.terminate())
    assert process.stdout is not None
    for line in process.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        tail.append(readable(line.rstrip("\n")))
        step = step_of_line(line)
        if steps is not None and step is not None:
            steps.append(step)
    return process.wait()


def build_report(code: int, tail: Sequence[str]) -> JobReport:
    plan = next(
        (line.rsplit(_PLAN_ARROW, 1)[1].strip() for line in reversed(tail) if _PLAN_ARROW in line),
        None,
    )
    return JobReport(
        ok=code == 0, exit_code=code, plan=plan if code == 0 else None, message=_last(tail)
    )


def gate_report(code: int, tail: Sequence[str], report: Path) -> JobReport:
    """The gate's numbers from `heron calibrate --json` (written before the gate is checked,
    so a refused model has them too); exit status 1 with them is the gate's refusal."""
    try:
        accuracy = json.loads(report.read_text()).get("accuracy") or []
    except (OSError, ValueError):
        accuracy = []
    drops = [float(a["mAP_drop"]) for a in accuracy if a.get("mAP_drop") is not None]
    if not drops:  # calibration itself failed, or no eval data: no verdict
        return JobReport(ok=not code, exit_code=code, message=_last(tail))
    worst = max(accuracy, key=lambda a: float(a.get("mAP_drop") or 0))
    summary = "; ".join(f"{a['label']}: {float(a['mAP_drop']):.2f} points" for a in accuracy)
    return JobReport(
        ok=code == 0,
        exit_code=code,
        ap_drop=round(max(drops) / 100.0, 6),
        passed=code == 0,
        message=f"INT8 mAP drop {summary} (worst: {worst['label']})"
        + ("" if code == 0 else "\n" + _last(tail)),
    )


def train_report(code: int, tail: Sequence[str], report: Path, steps: Sequence[str]) -> JobReport:
    """A training's numbers and files from its report.json (relative to the results folder),
    read only when it succeeded: a failed run may have left an earlier run's there."""
    step = steps[-1] if steps else None
    if code != 0:
        return JobReport(ok=False, exit_code=code, message=_last(tail), step=step)
    try:
        body = json.loads(report.read_text())
    except (OSError, ValueError) as e:
        message = f"{report}: cannot read the training's report ({e})"
        return JobReport(ok=False, exit_code=code, message=message, step=step)
    train = {key: body.get(key) for key in _TRAIN_KEYS}
    return JobReport(ok=True, exit_code=code, message=_last(tail), step=step, train=train)


def _last(tail: Sequence[str]) -> str:
    return "\n".join(tail).strip()


class Kind(StrEnum):
    BUILD = "build"
    GATE = "gate"
    TRAIN = "train"


app = typer.Typer(rich_markup_mode=None, pretty_exceptions_enable=False, add_completion=False)


@app.command()
def job_report(
    kind: Annotated[
        Kind,
        typer.Argument(
            help="build: the plan heron build-engine printed; gate: the numbers of `heron "
            "calibrate --json`; train: a training's report.json.",
            metavar="KIND",
            show_default=False,
        ),
    ],
    command: Annotated[
        list[str],
        typer.Argument(help="The command to run, after --.", metavar="COMMAND", show_default=False),
    ],
    report: Annotated[
        Path | None,
        typer.Option(
            help="gate: the JSON `heron calibrate --json` writes; train: the training's "
            "report.json.",
            show_default=False,
        ),
    ] = None,
    termination_log: Annotated[
        Path, typer.Option(help="The termination-message file the kubelet reads.")
    ] = Path(TERMINATION_LOG),
) -> None:
    """Run COMMAND; write what it did as the container's termination message; exit as it did."""
    if kind is not Kind.BUILD and report is None:
        raise typer.BadParameter(f"a {kind} reads its report: name it", param_hint=["--report"])
    tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
    steps: list[str] = []
    try:
        code = run(command, tail, steps)
    except OSError as e:
        code, tail = 127, collections.deque([f"cannot run {command[0]}: {e}"])
    if kind is Kind.GATE and report is not None:
        result = gate_report(code, tail, report)
    elif kind is Kind.TRAIN and report is not None:
        result = train_report(code, tail, report, steps)
    else:
        result = build_report(code, tail)
    termination_log.write_text(result.to_message())
    raise typer.Exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """The wrapped command's exit status (2: job_report's own arguments are wrong)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--" not in args and "--help" not in args:  # else the command's options read as ours
        print(f"usage: {PROG} build|gate|train [OPTIONS] -- COMMAND...", file=sys.stderr)
        return 2
    try:
        app(args=args, prog_name=PROG)
    except SystemExit as e:  # typer's standalone mode ends every run with one
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
