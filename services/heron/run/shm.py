"""Shared-memory rings a dead service could not unlink, removed after the run.

Ring segments are named `heron-<stream>-<pid>-<token>` (heron.core.framestore.names): the
writer's pid is in the name, so the supervisor removes exactly the segments of its own children
and never another run's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

SHM_DIR = Path("/dev/shm")


def leftover_segments(pids: Iterable[int], shm_dir: Path = SHM_DIR) -> list[Path]:
    wanted = {str(p) for p in pids}
    if not wanted or not shm_dir.is_dir():
        return []
    pattern = re.compile(r"^heron-.+-(\d+)-[0-9a-f]+$")
    found = []
    for entry in shm_dir.iterdir():
        m = pattern.match(entry.name)
        if m and m.group(1) in wanted:
            found.append(entry)
    return sorted(found)


def unlink_leftovers(pids: Iterable[int], shm_dir: Path = SHM_DIR) -> list[str]:
    """Unlink the segments the given writer pids left behind; returns their names."""
    removed = []
    for path in leftover_segments(pids, shm_dir):
        try:
            path.unlink()
            removed.append(path.name)
        except FileNotFoundError:
            pass  # its owner unlinked it meanwhile
    return removed
