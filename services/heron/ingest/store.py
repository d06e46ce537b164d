"""Where one stream's pixels go: its own shared-memory ring, or inline JPEG in the reference.

Built on heron.core.framestore. A stream's ring is created with its first frame (the frame
size is only known then), `shm_slots` slots of that frame's size, so memory stays bounded
however far consumers fall behind. A source that reconnects with a larger size gets a new ring
(new segment name); the one before is kept until the next resize, so references already
published keep resolving for a while, and every ring is unlinked when the stream closes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from heron.core.framestore import FrameStore, SharedMemoryRing, segment_name
from heron.core.plan.settings.ingest import FrameLocation
from heron.v1.frame_pb2 import FrameRef


class PixelStore(Protocol):
    def put(self, image: np.ndarray, ref: FrameRef) -> FrameRef: ...

    def close(self) -> None: ...


class JpegPixelStore:
    """Inline JPEG: consumers on any host can read it; costs an encode per frame."""

    def __init__(self, quality: int) -> None:
        self._store = FrameStore(jpeg_quality=quality)

    def put(self, image: np.ndarray, ref: FrameRef) -> FrameRef:
        return self._store.store(image, ref, "jpeg")

    def close(self) -> None:
        """Nothing to release."""


class ShmPixelStore:
    """One stream's shared-memory ring, created with the first frame and grown on resize."""

    def __init__(
        self, stream_id: str, slots: int, on_ring: Callable[[str], None] | None = None
    ) -> None:
        self.stream_id = stream_id
        self.slots = slots
        self.on_ring = on_ring  # told each new ring's segment name before its first frame
        self.ring: SharedMemoryRing | None = None
        self._previous: SharedMemoryRing | None = None
        self._store = FrameStore()

    def put(self, image: np.ndarray, ref: FrameRef) -> FrameRef:
        if self.ring is None or image.nbytes > self.ring.slot_bytes:
            self._new_ring(image.nbytes)
        return self._store.store(image, ref, "shm")

    def _new_ring(self, slot_bytes: int) -> None:
        if self._previous is not None:
            _release(self._previous)
        self._previous = self.ring
        self.ring = SharedMemoryRing.create(segment_name(self.stream_id), self.slots, slot_bytes)
        if self.on_ring is not None:
            self.on_ring(self.ring.name)
        self._store.ring = self.ring

    def close(self) -> None:
        for ring in (self.ring, self._previous):
            if ring is not None:
                _release(ring)
        self.ring = self._previous = None


def _release(ring: SharedMemoryRing) -> None:
    ring.unlink()  # idempotent; readers that attached keep their mapping until they close
    ring.close()


def pixel_store(
    location: FrameLocation,
    stream_id: str,
    *,
    slots: int,
    quality: int,
    on_ring: Callable[[str], None] | None = None,
) -> PixelStore:
    """`on_ring`: told the segment name of each shared-memory ring made (before its first
    frame), for the backpressure that counts the frames in this ingest's rings."""
    if location is FrameLocation.JPEG:
        return JpegPixelStore(quality)
    return ShmPixelStore(stream_id, slots, on_ring)
