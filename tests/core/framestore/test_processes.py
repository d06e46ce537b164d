"""The ring across real processes: a writer subprocess and readers in this and other processes.

Checks the resource-tracker pitfall of multiprocessing.shared_memory (Python < 3.13): a reader
process that exits must neither unlink the writer's segment nor warn about leaks.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from heron.core.framestore import (
    FrameOverwrittenError,
    SegmentNotFoundError,
    SharedMemoryRing,
)
from heron.v1.frame_pb2 import SharedMemorySlot

from tests.core.runtime.service_process import REPO

MODULE = "tests.core.framestore.ring_process"


class Writer:
    def __init__(self, slots: int, width: int, height: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", MODULE, "write", "cam-x", str(slots), str(width), str(height)],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.name = self._line()

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line:
            raise AssertionError(f"writer said nothing; stderr: {self.proc.communicate()[1]}")
        return line

    def put(self, value: int) -> SharedMemorySlot:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"put {value}\n")
        self.proc.stdin.flush()
        return SharedMemorySlot.FromString(bytes.fromhex(self._line()))

    def exit(self) -> str:
        _, err = self.proc.communicate("exit\n", timeout=10)
        assert self.proc.returncode == 0, err
        return err


@pytest.fixture
def writer() -> Iterator[Writer]:
    w = Writer(slots=3, width=64, height=48)
    yield w
    if w.proc.poll() is None:
        w.proc.kill()
        w.proc.wait()


def read_in_subprocess(*slots: SharedMemorySlot) -> tuple[list[str], str]:
    hexes = [s.SerializeToString().hex() for s in slots]
    done = subprocess.run(
        [sys.executable, "-m", MODULE, "read", *hexes],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.split(), done.stderr


def test_a_reader_in_this_process_sees_the_writers_frames(writer: Writer) -> None:
    slots = [writer.put(v) for v in (10, 20)]
    ring = SharedMemoryRing.attach(writer.name)
    try:
        frames = [ring.get(s, copy=True) for s in slots]
        assert [int(f.min()) for f in frames] == [10, 20]
        assert [int(f.max()) for f in frames] == [10, 20]
        assert frames[0].shape == (48, 64, 3)
        for v in (30, 40):  # the writer laps the 3-slot ring: slot 0 is rewritten
            writer.put(v)
        with pytest.raises(FrameOverwrittenError):
            ring.get(slots[0])
        assert int(ring.get(slots[1])[0, 0, 0]) == 20
    finally:
        ring.close()
    assert writer.exit() == ""
    with pytest.raises(SegmentNotFoundError):  # the writer unlinked on exit
        SharedMemoryRing.attach(writer.name)


def test_a_reader_process_exiting_leaves_the_segment_and_warns_nothing(writer: Writer) -> None:
    first = writer.put(5)
    values, stderr = read_in_subprocess(first)
    assert values == ["5"]
    assert stderr == ""  # no "resource_tracker: ... leaked shared_memory objects"
    # The segment outlived the reader: a second reader process still finds the frame.
    values, stderr = read_in_subprocess(first, writer.put(6))
    assert (values, stderr) == (["5", "6"], "")
    for v in (7, 8):
        writer.put(v)
    assert read_in_subprocess(first)[0] == ["overwritten"]
    assert writer.exit() == ""  # the writer's own unlink: no tracker complaints either


def test_a_killed_writer_has_its_segment_removed_by_its_resource_tracker() -> None:
    w = Writer(slots=1, width=8, height=8)
    w.put(1)
    w.proc.kill()
    w.proc.wait()
    # The tracker notices its parent died and unlinks what the writer created.
    for _ in range(200):
        try:
            SharedMemoryRing.attach(w.name).close()
        except SegmentNotFoundError:
            return
        time.sleep(0.05)
    pytest.fail(f"segment {w.name!r} survived its killed writer")
