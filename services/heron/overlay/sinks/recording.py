"""A recording that survives its writer being killed: parts on disk, a journal of what is
committed, and one join into the user's file at the end.

Why not write the MP4 directly: an MP4 is playable only once its index (the moov box) is
written at close, so an overlay killed mid-run lost the whole file, and its restart began a new
one. The overlay acknowledges a frame's metadata only after its sinks took the frame, so for a
file "took" must mean "on disk, and found again after a crash". Here:

- the encoder writes MPEG-TS parts (`<output>.parts/part-0000.ts`, ...): a TS muxer writes each
  packet out as it is muxed, and a TS file cut anywhere is still readable up to the cut;
- `commit()`, called before the acknowledgement, appends one JSON line to the part's journal
  naming the bytes, timestamps and frames now committed; bytes past the last commit are a torn
  tail and are cut off;
- a restarted writer (`resume=True`) truncates the last part to its last commit, continues the
  timeline in a new part, and skips frames committed but not yet acknowledged when it died;
- `finish()` remuxes every part (no re-encode) into the output under a temporary name, renames
  it into place, then removes the parts.

Durable means "survives the process": lines and packets reach the kernel at once, but are not
fsynced per frame, so a power cut can still lose the last seconds.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, TextIO

from heron.overlay.dedup import FrameKey, RecentFrames
from heron.overlay.sinks.base import RecordingError

log = logging.getLogger(__name__)

PART_FORMAT = "mpegts"
REMEMBERED_FRAMES = 4096  # committed frames a restart checks redeliveries against


@dataclass(frozen=True)
class Commit:
    """One journal line: the part's bytes up to `end` hold the packets of `pts` (in ticks)."""

    end: int
    pts: list[int]
    frames: list[FrameKey]

    def to_line(self) -> str:
        return json.dumps({"end": self.end, "pts": self.pts, "frames": self.frames}) + "\n"

    @classmethod
    def from_line(cls, line: str, where: str) -> Commit:
        try:
            data = json.loads(line)
            return cls(
                end=int(data["end"]),
                pts=[int(p) for p in data["pts"]],
                frames=[(str(s), int(n), int(a), int(b)) for s, n, a, b in data["frames"]],
            )
        except (ValueError, KeyError, TypeError) as e:
            raise RecordingError(f"{where}: not a journal line ({e}): {line[:80]!r}") from e


@dataclass
class Part:
    """One TS file and what its journal says is committed in it."""

    path: Path
    commits: list[Commit] = field(default_factory=list)

    @property
    def journal(self) -> Path:
        return self.path.with_suffix(".journal")

    @property
    def pts(self) -> list[int]:
        return [p for c in self.commits for p in c.pts]

    @property
    def end(self) -> int:
        return self.commits[-1].end if self.commits else 0

    def load(self) -> None:
        """Read the journal; a line cut short by a kill is the last one and is dropped."""
        if not self.journal.exists():
            return
        lines = self.journal.read_text(encoding="utf-8").split("\n")
        complete = lines[:-1]  # what follows the last newline was never finished
        self.commits = [
            Commit.from_line(line, f"{self.journal}:{i}") for i, line in enumerate(complete, 1)
        ]


class Recording:
    """The parts of one output file. Not thread-safe: one writer at a time."""

    def __init__(self, output: Path, *, resume: bool) -> None:
        self.output = output
        self.folder = output.with_name(output.name + ".parts")
        self.parts: list[Part] = []
        self._committed = RecentFrames(REMEMBERED_FRAMES)  # to skip redeliveries
        self._journal: TextIO | None = None
        try:
            if resume:
                self._load()
            elif self.folder.exists():
                log.warning(
                    "discarding the unfinished recording of an earlier run: %s", self.folder
                )
                shutil.rmtree(self.folder)
        except OSError as e:
            raise RecordingError(f"cannot prepare {self.folder}: {e.strerror or e}") from e

    # --- what a resumed writer continues from --------------------------------------------

    @property
    def frames(self) -> int:
        return sum(len(p.pts) for p in self.parts)

    def timeline(self) -> tuple[int, int] | None:
        """The last committed pts and the spacing of the last two, in ticks; None if none."""
        pts = [p for part in self.parts for p in part.pts][-2:]
        if not pts:
            return None
        return pts[-1], (pts[-1] - pts[0] if len(pts) == 2 else 0)

    def size(self) -> tuple[int, int] | None:
        """Width and height of the committed video; a resumed writer must keep them."""
        import av

        for part in self.parts:
            if part.commits:
                with av.open(str(part.path), format=PART_FORMAT) as source:
                    video = source.streams.video[0]
                    return int(video.width), int(video.height)
        return None

    def seen(self, frames: list[FrameKey]) -> bool:
        """Every one of `frames` is committed already (a redelivery after a restart)."""
        return bool(frames) and all(f in self._committed for f in frames)

    # --- writing -------------------------------------------------------------------------

    def new_part(self) -> Path:
        """The path of the next part; its journal is opened for `commit`."""
        self.close_journal()
        part = Part(self.folder / f"part-{len(self.parts):04d}.ts")
        try:
            self.folder.mkdir(exist_ok=True)
            self._journal = part.journal.open("a", encoding="utf-8")
        except OSError as e:
            raise RecordingError(f"cannot write in {self.folder}: {e.strerror or e}") from e
        self.parts.append(part)
        return part.path

    def commit(self, pts: list[int], frames: list[FrameKey]) -> None:
        """Mark everything written to the current part so far as committed."""
        if self._journal is None or not self.parts:
            raise RecordingError(f"{self.output}: commit before a part was opened")
        part = self.parts[-1]
        try:
            line = Commit(part.path.stat().st_size, pts, frames)
            self._journal.write(line.to_line())
            self._journal.flush()
        except OSError as e:
            raise RecordingError(f"cannot write {part.journal}: {e.strerror or e}") from e
        part.commits.append(line)
        self._remember(frames)

    def close_journal(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    # --- the end -------------------------------------------------------------------------

    def finish(self, container: str, ticks: int) -> int:
        """Join the committed packets of every part into the output; returns the frame count."""
        self.close_journal()
        parts = [p for p in self.parts if p.commits]
        if not parts:
            shutil.rmtree(self.folder, ignore_errors=True)
            return 0
        temporary = self.output.with_name(f".{self.output.name}.joining")
        try:
            frames = _join(parts, temporary, container, ticks)
            os.replace(temporary, self.output)
        except OSError as e:
            temporary.unlink(missing_ok=True)
            raise RecordingError(f"cannot write {self.output}: {e.strerror or e}") from e
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        shutil.rmtree(self.folder, ignore_errors=True)
        return frames

    # --- internals -----------------------------------------------------------------------

    def _load(self) -> None:
        if not self.folder.is_dir():
            return
        for path in sorted(self.folder.glob("part-*.ts")):
            part = Part(path)
            part.load()
            if path.stat().st_size > part.end:  # a torn tail: packets nobody committed
                os.truncate(path, part.end)
            self.parts.append(part)
            for c in part.commits:
                self._remember(c.frames)
        if self.parts:
            log.info(
                "resuming the recording of %s: %d frame(s) in %d part(s)",
                self.output, self.frames, len(self.parts),
            )  # fmt: skip

    def _remember(self, frames: list[FrameKey]) -> None:
        for f in frames:
            self._committed.add(f)


def _join(parts: list[Part], output: Path, container: str, ticks: int) -> int:
    """Remux each part's committed packets, timestamped from the journal, into `output`."""
    import av

    written = 0
    out = av.open(str(output), mode="w", format=container)
    try:
        stream: Any = None
        for part in parts:
            with av.open(str(part.path), format=PART_FORMAT) as source:
                video = source.streams.video[0]
                if stream is None:
                    stream = out.add_stream_from_template(video)
                    stream.time_base = Fraction(1, ticks)
                packets = (p for p in source.demux(video) if p.size)
                pts = part.pts
                done = 0
                for packet, stamp in zip(packets, pts, strict=False):
                    packet.pts = packet.dts = stamp
                    packet.time_base = Fraction(1, ticks)
                    packet.stream = stream
                    out.mux(packet)
                    done += 1
            if done < len(pts):
                raise RecordingError(
                    f"{part.path}: its journal commits {len(pts)} frame(s) but only {done} "
                    "could be read back"
                )
            written += done
    except av.FFmpegError as e:
        raise RecordingError(f"joining the parts of {output.name} failed: {e}") from e
    finally:
        out.close()
    return written
