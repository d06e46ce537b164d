"""Names of shared-memory segments: safe on every POSIX system, unique per writer."""

from __future__ import annotations

import os
import re
import secrets

PREFIX = "heron"
# macOS limits POSIX shm names to 31 characters (PSHMNAMLEN); Linux allows 255. Staying under
# the smaller keeps names portable.
MAX_NAME = 31
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_VALID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def segment_name(stream: str, pid: int | None = None, token: str | None = None) -> str:
    """`heron-<stream>-<pid>-<token>`, characters outside [A-Za-z0-9_.-] replaced by '_'.

    The random token keeps a restarted writer that got its predecessor's pid (common in
    containers, where pids start at 1) from colliding with a segment left behind.
    """
    pid = os.getpid() if pid is None else pid
    token = secrets.token_hex(3) if token is None else token
    tail = f"-{pid}-{token}"
    room = MAX_NAME - len(PREFIX) - 1 - len(tail)
    if room < 1:
        raise ValueError(
            f"segment name: pid {pid} and token {token!r} leave no room for the stream "
            f"name within {MAX_NAME} characters"
        )
    safe = _UNSAFE.sub("_", stream).strip("_") or "stream"
    return f"{PREFIX}-{safe[:room]}{tail}"


def check_segment_name(name: str) -> str:
    """Refuse names that could escape /dev/shm or that other systems would reject."""
    if not (1 <= len(name) <= MAX_NAME) or not _VALID.match(name):
        raise ValueError(
            f"segment name: expected 1-{MAX_NAME} characters of letters, digits, '_', '.', '-' "
            f"starting with a letter or digit, got {name!r}"
        )
    return name
