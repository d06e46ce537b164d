"""Where a restarted ingest picks a file source up again: the oldest frame the pipeline still needs.

A killed ingest takes its shared-memory rings with it, so the frames it published that are
still on their way (unread or unacknowledged on the frame stream, or their metadata still
waiting for the tracker or the overlay, which reads the pixels last) name pixels that are gone.
Resuming after the newest frame on the bus would lose them; starting over from frame 0 would
put the clip's start into the sinks once more. So a restarted ingest publishes again from the
oldest frame that any consumer group of the frame stream or of a metadata stream has not
finished, under its old number and capture time: downstream then takes the copy for the frame
it is (the overlay draws a frame once, by stream, number and capture time), and a stale
reference whose pixels are gone is dropped by its reader while the copy goes on.

Frame numbers say where a frame is in the file: the worker numbers the frames it keeps (every
drop-frame-interval'th) from 0, so passing over the first N kept frames of a file reaches
frame N. Only finite sources resume: a camera cannot be read again, and a looping file's
numbers keep growing with every pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import get_args

from google.protobuf.timestamp_pb2 import Timestamp

from heron.core import streams
from heron.core.bus import Bus
from heron.core.bus.tail import START
from heron.core.plan.model import Stage
from heron.core.plan.sources import PlannedSource
from heron.v1.detection_pb2 import FrameMetadata
from heron.v1.frame_pb2 import FrameRef

# Entries looked at per consumer group and stream. Far more than a pipeline holds in flight
# (the ring's slots bound it), so the oldest unfinished frame is always among them.
LOOK_UP_TO = 10_000


@dataclass(frozen=True)
class Resume:
    """Where one stream starts: `next_frame` is the first number to publish (0: the start);
    the frames from there that were published before keep their capture times."""

    next_frame: int = 0
    captured: dict[int, Timestamp] = field(default_factory=dict)
    published: int = 0  # frames a predecessor published (the newest number + 1)


def resumable(planned: PlannedSource) -> bool:
    """A finite source, read the same way every time: a file or HTTP(S) clip without loop."""
    return not planned.target.live and not planned.spec.loop


def resume_points(bus: Bus, pipeline: str, stream_ids: Iterable[str]) -> dict[str, Resume]:
    """Each stream's resume point, from what an earlier ingest left on the bus."""
    wanted = list(stream_ids)
    if not wanted:
        return {}
    # The metadata streams carry every stream's frames: read each once.
    in_metadata = [
        m.frame
        for stage in get_args(Stage)
        for m in bus.unfinished(streams.metadata(stage, pipeline), FrameMetadata, LOOK_UP_TO)
    ]
    return {s: _resume(bus, s, in_metadata) for s in wanted}


def _resume(bus: Bus, stream_id: str, in_metadata: list[FrameRef]) -> Resume:
    frames = streams.frames(stream_id)
    read = bus.tail(frames, FrameRef).read(START, LOOK_UP_TO)
    kept = [e.message for e in read.entries if e.message is not None]
    if not kept:
        return Resume()  # nothing published yet: a first start
    needed = bus.unfinished(frames, FrameRef, LOOK_UP_TO)
    needed += [ref for ref in in_metadata if ref.stream_id == stream_id]
    # Not the newest entry's number: a predecessor that was itself publishing again was killed
    # after lower numbers than the frame stream already holds.
    published = max(ref.frame_number for ref in (*kept, *needed)) + 1
    first = min((ref.frame_number for ref in needed), default=published)
    # Every frame from `first` on keeps the capture time it was published with, finished or
    # not: a later frame the overlay already drew must be taken for a repeat, not drawn again.
    captured: dict[int, Timestamp] = {}
    for ref in (*needed, *reversed(kept)):
        if ref.frame_number >= first:
            captured.setdefault(ref.frame_number, ref.capture_time)
    return Resume(next_frame=first, captured=captured, published=published)
