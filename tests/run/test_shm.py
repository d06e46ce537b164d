"""Leftover ring segments of the run's own children, and only those, are unlinked."""

from __future__ import annotations

from pathlib import Path

from heron.core.framestore.names import segment_name
from heron.run.shm import leftover_segments, unlink_leftovers


def test_only_the_given_writers_segments_go(tmp_path: Path) -> None:
    mine = [segment_name("source-0", pid=4242), segment_name("mux-default", pid=4343)]
    others = [segment_name("source-0", pid=999), "heron-notours", "PostgreSQL.1234"]
    for name in mine + others:
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in leftover_segments([4242, 4343], tmp_path)] == sorted(mine)
    assert sorted(unlink_leftovers([4242, 4343], tmp_path)) == sorted(mine)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(others)


def test_no_pids_or_no_folder_is_nothing(tmp_path: Path) -> None:
    (tmp_path / segment_name("s", pid=1)).write_bytes(b"x")
    assert leftover_segments([], tmp_path) == []
    assert leftover_segments([1], tmp_path / "absent") == []
