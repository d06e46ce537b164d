"""A recording outlives its writer: a writer SIGKILLed mid-file is resumed by the next one,
and the joined file has every committed frame once, in order, evenly timed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import av
import pytest
from heron.overlay.sinks.base import RecordingError
from heron.overlay.sinks.file import FileVideoSink
from heron.overlay.sinks.recording import Recording
from heron.v1.detection_pb2 import FrameMetadata
from heron.v1.frame_pb2 import FrameRef

from tests.ingest.clips import frame_image, read_number

TB = 12800  # source time base 1/12800: 512 ticks a frame is 25 fps


def meta(i: int) -> list[FrameMetadata]:
    ref = FrameRef(stream_id="a", frame_number=i, pts=i * 512, time_base_num=1, time_base_den=TB)
    ref.capture_time.FromNanoseconds(1_000_000 * (i + 1))
    return [FrameMetadata(frame=ref)]


def numbers_and_times(path: Path) -> tuple[list[int], list[float]]:
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
        return (
            [read_number(f.to_ndarray(format="bgr24")) for f in frames],
            [float(f.time) for f in frames],
        )


def write_then_die(
    output: Path, committed: int, uncommitted: int = 0, *, start: int = 0, resume: bool = False
) -> None:
    """A writer in a process of its own that commits frames `start`.. (`committed` of them),
    writes `uncommitted` more, and is SIGKILLed before it can commit or close anything."""
    first, last = start + committed, start + committed + uncommitted
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from tests.overlay.sinks.test_recording import meta
        from tests.ingest.clips import frame_image
        from heron.overlay.sinks.file import FileVideoSink
        sink = FileVideoSink("sink0", Path({str(output)!r}), fps=25, resume={resume})
        for i in range({start}, {last}):
            sink.write(frame_image(i), meta(i))
            if i < {first}:
                sink.commit()
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()


def test_a_killed_writer_is_resumed_with_every_frame_once(tmp_path: Path) -> None:
    output = tmp_path / "out.mp4"
    write_then_die(output, committed=10, uncommitted=3)
    assert not output.exists()  # nothing was joined: the parts wait for the next writer
    sink = FileVideoSink("sink0", output, fps=25, resume=True)
    for i in range(8, 20):  # 8 and 9 come again: committed, but never acknowledged
        sink.write(frame_image(i), meta(i))
        sink.commit()
    sink.close()
    numbers, times = numbers_and_times(output)
    assert numbers == list(range(20))
    assert times == pytest.approx([i * 0.04 for i in range(20)], abs=1e-3)
    assert not (tmp_path / "out.mp4.parts").exists()


def test_a_writer_killed_twice_is_resumed_twice(tmp_path: Path) -> None:
    output = tmp_path / "out.mp4"
    write_then_die(output, committed=5, uncommitted=1)
    first = Recording(output, resume=True)
    assert first.frames == 5 and first.timeline() is not None
    first.close_journal()
    write_then_die(output, committed=5, start=5, resume=True)  # the second writer dies too
    sink = FileVideoSink("sink0", output, fps=25, resume=True)
    for i in range(10, 12):
        sink.write(frame_image(i), meta(i))
    sink.close()
    assert numbers_and_times(output)[0] == list(range(12))


def test_a_torn_journal_line_and_a_torn_packet_are_cut_off(tmp_path: Path) -> None:
    output = tmp_path / "out.mp4"
    write_then_die(output, committed=4, uncommitted=0)
    part = tmp_path / "out.mp4.parts" / "part-0000.ts"
    committed_size = part.stat().st_size
    with part.open("ab") as f:
        f.write(b"\x47" + b"\x00" * 300)  # half a TS packet, as a kill mid-write leaves
    with part.with_suffix(".journal").open("a") as f:
        f.write('{"end": 99999, "pts": [')  # a line the kill cut short
    recording = Recording(output, resume=True)
    assert part.stat().st_size == committed_size
    assert recording.frames == 4
    assert recording.finish("mp4", 60_000) == 4
    assert numbers_and_times(output)[0] == [0, 1, 2, 3]


def test_without_resume_an_unfinished_recording_of_an_earlier_run_is_discarded(
    tmp_path: Path,
) -> None:
    output = tmp_path / "out.mp4"
    write_then_die(output, committed=3, uncommitted=0)
    sink = FileVideoSink("sink0", output, fps=25)  # a new run: its own recording
    for i in range(100, 102):
        sink.write(frame_image(i), meta(i))
    sink.close()
    assert numbers_and_times(output)[0] == [100, 101]


def test_a_journal_that_is_not_a_journal_is_named_with_its_line(tmp_path: Path) -> None:
    output = tmp_path / "out.mp4"
    parts = tmp_path / "out.mp4.parts"
    parts.mkdir()
    (parts / "part-0000.ts").write_bytes(b"")
    line = json.dumps({"end": 0, "pts": [], "frames": []})
    (parts / "part-0000.journal").write_text(f"{line}\nnot json\n{line}\n")
    with pytest.raises(RecordingError, match=r"part-0000\.journal:2: not a journal line"):
        Recording(output, resume=True)


def test_packets_missing_behind_the_journal_are_a_clear_error(tmp_path: Path) -> None:
    output = tmp_path / "out.mp4"
    write_then_die(output, committed=4, uncommitted=0)
    part = tmp_path / "out.mp4.parts" / "part-0000.ts"
    second = json.loads(part.with_suffix(".journal").read_text().splitlines()[1])
    part.write_bytes(part.read_bytes()[: second["end"]])  # lost what the journal promises
    recording = Recording(output, resume=True)
    with pytest.raises(RecordingError, match=r"commits 4 frame\(s\) but only 2 could be read"):
        recording.finish("mp4", 60_000)
    assert not output.exists()


def test_a_parts_folder_that_cannot_be_made_is_a_recording_error(tmp_path: Path) -> None:
    output = tmp_path / "out.mp4"
    (tmp_path / "out.mp4.parts").write_text("a file where the parts folder goes")
    with pytest.raises(RecordingError, match=r"cannot prepare .*out\.mp4\.parts"):
        FileVideoSink("sink0", output, fps=25)
