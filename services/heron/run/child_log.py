"""What a child's log says about why it stopped: its last error, in one line for the terminal.

Services log JSON lines under `heron run` (heron.core.runtime.logs; `log.format: json`), and the
console format elsewhere; a process that dies before it configured logging (an import error, a
crash of the interpreter) leaves a bare traceback or a "Fatal Python error" line. `last_error`
reads all three: the last ERROR/CRITICAL record, its message with the last line of its
traceback (the exception), or the exception line of a bare traceback.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ERROR_LEVELS = frozenset({"ERROR", "CRITICAL"})
MAX_REASON = 300  # characters of a reason on the terminal; the log file has the rest
TAIL_BYTES = 64 * 1024  # how much of a log's end is read for its last error

# heron.core.runtime.logs.ConsoleFormatter: `<ts> <LEVEL> <logger> [<service>] <message>`
_CONSOLE = re.compile(r"^\S+ (?P<level>[A-Z]+)\s+\S+ \[[^\]]*\] (?P<message>.*)$")
# `pkg.module.SomeError: text`: the class without its module, which says little on a terminal
_QUALIFIED = re.compile(r"^(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_]\w*(?::|$))")
_TRACEBACK = "Traceback (most recent call last):"
_FATAL = "Fatal Python error:"


def read_since(path: Path, offset: int, limit: int = TAIL_BYTES) -> str:
    """What was appended to `path` after `offset` (at most its last `limit` bytes); "" when
    the file is gone. A torn first line (cut by `limit`) is dropped."""
    try:
        with path.open("rb") as f:
            size = f.seek(0, 2)
            start = max(offset, size - limit)
            f.seek(start)
            data = f.read()
    except FileNotFoundError:
        return ""
    text = data.decode("utf-8", errors="replace")
    if start > offset:
        text = text.partition("\n")[2]
    return text


def readable(line: str) -> str:
    """A JSON log record as `LEVEL message` plus the last line of its traceback; any other
    line as it is."""
    record = _record(line)
    if record is None:
        return line
    text = f"{record.get('level', '')} {record.get('message', '')}"
    exc = _exception_line(record.get("exc"))
    return f"{text}: {exc}" if exc else text


def last_error(text: str) -> str | None:
    """The last error `text` (a log's lines) tells of, as one line; None when it has none."""
    found: str | None = None
    message: str | None = None  # of the console record or bare traceback being read
    exception: str | None = None  # the last line of its traceback so far
    reading = False  # lines that are not records belong to an error being read
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line:
            continue
        record = _record(line)
        if record is not None:
            reading = False
            if str(record.get("level", "")).upper() in ERROR_LEVELS:
                found = _join(str(record.get("message", "")), _exception_line(record.get("exc")))
            continue
        console = _CONSOLE.match(line)
        if console is not None:
            reading = console["level"] in ERROR_LEVELS
            if reading:
                message, exception = console["message"], None
                found = _join(message, None)
            continue
        if line.startswith(_TRACEBACK):  # of the error record just read, or a bare one
            message = message if reading else None
            reading, exception = True, None
            continue
        if line.startswith(_FATAL):
            reading, message, exception = False, None, None
            found = line
            continue
        if reading and not line[0].isspace():  # frames are indented; the exception is not
            exception = _QUALIFIED.sub("", line.strip())
            found = _join(message, exception)
    return None if found is None else _shorten(found)


def _record(line: str) -> dict[str, object] | None:
    if not line.startswith("{"):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _exception_line(exc: object) -> str | None:
    if not isinstance(exc, str) or not exc.strip():
        return None
    return _QUALIFIED.sub("", exc.strip().splitlines()[-1].strip())


def _join(message: str | None, exception: str | None) -> str:
    parts = [p for p in (message, exception) if p]
    return ": ".join(parts) or "an error without a message"


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"
