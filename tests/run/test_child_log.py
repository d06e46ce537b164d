"""The reason a child died, read from its log: JSON records, console lines, bare tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from heron.run.child_log import MAX_REASON, last_error, read_since, readable


def record(level: str, message: str, exc: str | None = None) -> str:
    entry = {"ts": "2026-12-08T02:05:21.803Z", "level": level, "logger": "x", "message": message}
    if exc is not None:
        entry["exc"] = exc
    return json.dumps(entry)


TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "service.py", line 192, in serve\n'
    "    service.start()\n"
    "heron.inference.errors.BackendUnavailableError: Triton at 127.0.0.1:8001: refused"
)


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            [record("INFO", "starting"), record("ERROR", "service failed", TRACEBACK),
             record("INFO", "stopped")],
            "service failed: BackendUnavailableError: Triton at 127.0.0.1:8001: refused",
        ),
        (
            [record("ERROR", "first"), record("CRITICAL", "fatal: disk full")],
            "fatal: disk full",
        ),
        (
            ["2026-12-08T02:05:21.803Z ERROR heron.core.runtime.service [inference] "
             "service failed", *TRACEBACK.splitlines(),
             "2026-12-08T02:05:21.900Z INFO  heron.core.runtime.service [inference] bye"],
            "service failed: BackendUnavailableError: Triton at 127.0.0.1:8001: refused",
        ),
        (
            [record("INFO", "starting"), *TRACEBACK.replace("Backend", "Module").splitlines()],
            "ModuleUnavailableError: Triton at 127.0.0.1:8001: refused",
        ),
        (
            ["Fatal Python error: Segmentation fault", "", "Current thread 0x1 (most recent "
             "call first):", '  File "x.py", line 3 in f'],
            "Fatal Python error: Segmentation fault",
        ),
        ([record("INFO", "starting"), record("WARNING", "slow"), "plain output"], None),
        ([], None),
    ],
    ids=["json with traceback", "json, the last one", "console format", "bare traceback",
         "fatal python error", "no error", "empty"],
)  # fmt: skip
def test_the_last_error_in_one_line(lines: list[str], expected: str | None) -> None:
    assert last_error("\n".join(lines) + "\n") == expected


def test_a_long_reason_is_cut_for_the_terminal() -> None:
    reason = last_error(record("ERROR", "x" * 1000))
    assert reason is not None and len(reason) == MAX_REASON and reason.endswith("…")


def test_only_what_was_appended_since_an_offset_is_read(tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    log.write_text("old line\n")
    offset = log.stat().st_size
    with log.open("a") as f:
        f.write("new line\n")
    assert read_since(log, offset) == "new line\n"
    assert read_since(log, 0, limit=12) == "new line\n"  # a torn first line is dropped
    assert read_since(tmp_path / "gone.log", 0) == ""


def test_readable_shows_a_record_as_level_and_message() -> None:
    assert readable(record("ERROR", "service failed", TRACEBACK)) == (
        "ERROR service failed: BackendUnavailableError: Triton at 127.0.0.1:8001: refused"
    )
    assert readable("not json") == "not json"
