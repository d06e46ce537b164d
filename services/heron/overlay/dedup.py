"""Drop metadata the overlay already wrote: the bus delivers at least once.

A stage killed after publishing a frame's metadata but before acknowledging its input does that
frame again when it restarts, so the same frame reaches the overlay twice. Drawn twice it would
add a frame to a recording (a lossless run over a file would no longer have the file's frame
count). A frame is named by its stream, number and capture time: the capture time tells a
re-publish of the same frame (same FrameRef) from a restarted ingest numbering from 0 again.
Duplicates come within a few batches of the original, so a bounded memory of recent frames is
enough.

A frame the overlay could not draw is forgotten again: a restarted ingest publishes the frames
the pipeline still needed once more, under their old number and capture time with pixels in its
new ring (heron.ingest.resume), and the copy of a frame whose first delivery named pixels that
died with the old ingest must be drawn.
"""

from __future__ import annotations

from collections import OrderedDict

from heron.v1.detection_pb2 import FrameMetadata

FrameKey = tuple[str, int, int, int]


def frame_key(meta: FrameMetadata) -> FrameKey:
    """A frame's identity across deliveries: stream, number and capture time."""
    ref = meta.frame
    return (ref.stream_id, ref.frame_number, ref.capture_time.seconds, ref.capture_time.nanos)


class RecentFrames:
    def __init__(self, capacity: int = 4096) -> None:
        if capacity < 1:
            raise ValueError(f"RecentFrames capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._seen: OrderedDict[FrameKey, None] = OrderedDict()

    def __contains__(self, key: FrameKey) -> bool:
        return key in self._seen

    def add(self, key: FrameKey) -> None:
        """Remember `key`; past `capacity`, the oldest key is forgotten."""
        self._seen[key] = None
        if len(self._seen) > self.capacity:
            self._seen.popitem(last=False)

    def forget(self, meta: FrameMetadata) -> None:
        """Take back a frame that could not be drawn: a later delivery of it is drawn."""
        self._seen.pop(frame_key(meta), None)

    def first_time(self, meta: FrameMetadata) -> bool:
        """True the first time a frame is offered (and remembers it); False for a repeat."""
        key = frame_key(meta)
        if key in self._seen:
            return False
        self.add(key)
        return True
