"""Frames in, FrameRefs out, and back: the facade producers and consumers use.

`FrameStore` (a producer: ingest, streammux) puts an image where the FrameRef will say it is
and fills the ref's location, pixel format, stored size, source size and placement.
`FrameReader` (a consumer) resolves any FrameRef to a BGR uint8 HxWx3 array of the ref's
stored size, attaching to writers' rings by segment name the first time it meets one.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from heron.core.framestore.errors import BadFrameRefError, UnsupportedLocationError
from heron.core.framestore.jpeg import DEFAULT_QUALITY, decode_jpeg, encode_jpeg
from heron.core.framestore.letterbox import Letterbox, stored_size
from heron.core.framestore.pixels import format_name, raw_shape, to_bgr
from heron.core.framestore.ring import SharedMemoryRing
from heron.core.framestore.segment import Segment
from heron.v1.frame_pb2 import FrameBatch, FrameRef, PixelFormat

Location = Literal["shm", "jpeg"]
LOCATIONS: tuple[Location, ...] = ("shm", "jpeg")


def _describe(ref: FrameRef) -> str:
    return f"FrameRef {ref.stream_id or '<no stream_id>'}#{ref.frame_number}"


class FrameStore:
    """Stores images for FrameRefs, in `ring` (same host) or inline as JPEG (across hosts)."""

    def __init__(
        self, ring: SharedMemoryRing | None = None, *, jpeg_quality: int = DEFAULT_QUALITY
    ) -> None:
        if not 1 <= jpeg_quality <= 100:
            raise ValueError(f"FrameStore: expected jpeg_quality 1..100, got {jpeg_quality}")
        self.ring = ring
        self.jpeg_quality = jpeg_quality

    def store(
        self,
        image: npt.NDArray[Any],
        ref: FrameRef,
        location: Location = "shm",
        *,
        placement: Letterbox | None = None,
    ) -> FrameRef:
        """A copy of `ref` pointing at `image` (BGR uint8 HxWx3), stored at `location`.

        `placement`: how a source frame was scaled into `image` (its dst size is the image's);
        None means `image` is the source frame itself (identity placement)."""
        _check_bgr(image, "FrameStore.store")
        height, width = image.shape[:2]
        box = placement or Letterbox.identity(width, height)
        if (box.dst_w, box.dst_h) != (width, height):
            raise ValueError(
                f"FrameStore.store: the placement is into {box.dst_w}x{box.dst_h}, the image "
                f"is {width}x{height}"
            )
        out = FrameRef()
        out.CopyFrom(ref)
        box.fill(out)
        if location == "shm":
            if self.ring is None:
                raise ValueError(
                    "FrameStore.store: location 'shm' needs a ring; this store has none"
                )
            out.shm.CopyFrom(self.ring.put(image))
            out.pixel_format = PixelFormat.PIXEL_FORMAT_BGR24
        elif location == "jpeg":
            out.jpeg = encode_jpeg(image, self.jpeg_quality)
            out.pixel_format = PixelFormat.PIXEL_FORMAT_JPEG
        else:
            raise ValueError(
                f"FrameStore.store: expected location in {LOCATIONS}, got {location!r}"
            )
        return out


class FrameReader:
    """Resolves FrameRefs to BGR uint8 HxWx3 arrays.

    Rings are attached lazily by segment name and kept (at most `max_segments`, least recently
    used closed first: writers that restarted leave names nobody uses again).
    With `copy=False` a raw BGR24 frame in shared memory comes back as a read-only zero-copy
    view, valid until its writer laps the ring (see `is_current`).
    """

    def __init__(self, *, max_segments: int = 64) -> None:
        if max_segments < 1:
            raise ValueError(f"FrameReader: expected max_segments >= 1, got {max_segments}")
        self.max_segments = max_segments
        self._rings: OrderedDict[str, SharedMemoryRing] = OrderedDict()

    def read(self, ref: FrameRef, *, copy: bool = True) -> npt.NDArray[np.uint8]:
        """The frame's pixels as BGR uint8 HxWx3, of the ref's stored size (stored_width x
        stored_height; its width/height for refs written before those fields)."""
        width, height = stored_size(ref)
        location = ref.WhichOneof("location")
        if location is None:
            raise BadFrameRefError(
                f"{_describe(ref)}: no location (expected one of jpeg, shm, cuda_ipc)"
            )
        if location == "cuda_ipc":
            raise UnsupportedLocationError(
                f"{_describe(ref)}: the frame is in GPU memory (cuda_ipc, device "
                f"{ref.cuda_ipc.device_id}); this reader resolves only shm and jpeg -- it runs "
                "without CUDA. Have the producer store shm (same host) or jpeg instead"
            )
        if location == "jpeg":
            image = decode_jpeg(ref.jpeg)
        else:
            image = self._read_shm(ref, width, height, copy=copy)
        if (width, height) != (image.shape[1], image.shape[0]):
            raise BadFrameRefError(
                f"{_describe(ref)}: expected a {width}x{height} frame, the stored frame is "
                f"{image.shape[1]}x{image.shape[0]}"
            )
        return image

    def read_batch(self, batch: FrameBatch, *, copy: bool = True) -> list[npt.NDArray[np.uint8]]:
        """Every frame of a streammux batch, each of its stored (the muxer's) size."""
        return [self.read(f, copy=copy) for f in batch.frames]

    def is_current(self, ref: FrameRef) -> bool:
        """For shm refs: the slot still holds the frame (a zero-copy view is still good)."""
        if ref.WhichOneof("location") != "shm":
            return True
        return self._ring(ref.shm.segment).is_current(ref.shm)

    def _read_shm(
        self, ref: FrameRef, width: int, height: int, *, copy: bool
    ) -> npt.NDArray[np.uint8]:
        expected = raw_shape(ref.pixel_format, width, height)
        ring = self._ring(ref.shm.segment)
        raw = ring.get(ref.shm, copy=False)
        if raw.shape != expected:
            raise BadFrameRefError(
                f"{_describe(ref)}: {format_name(ref.pixel_format)} {width}x{height} "
                f"means an array of shape {expected}, the slot holds {raw.shape}"
            )
        image = to_bgr(raw, ref.pixel_format, copy=copy)
        if copy or ref.pixel_format != PixelFormat.PIXEL_FORMAT_BGR24:
            # A copy (or conversion) is only good if the writer did not start over meanwhile.
            ring.get(ref.shm, copy=False)
        return image

    def _ring(self, segment: str) -> SharedMemoryRing:
        ring = self._rings.get(segment)
        if ring is not None:
            self._rings.move_to_end(segment)
            return ring
        if not segment:
            raise BadFrameRefError("FrameRef.shm.segment: expected a segment name, got ''")
        try:
            ring = SharedMemoryRing.attach(segment)
        except ValueError as e:  # a name that is not a valid segment name
            raise BadFrameRefError(f"FrameRef.shm.segment: {e}") from None
        self._rings[segment] = ring
        while len(self._rings) > self.max_segments:
            _, oldest = self._rings.popitem(last=False)
            oldest.close()
        return ring

    def prune(self) -> list[str]:
        """Close rings whose writers have unlinked them; returns their names.

        An unlinked segment's memory is freed only when the last mapping goes, so a reader
        that outlives many writer restarts should call this now and then.
        """
        gone = [name for name in self._rings if not Segment.exists(name)]
        for name in gone:
            self.forget(name)
        return gone

    def forget(self, segment: str) -> None:
        """Close a ring whose writer is known to be gone."""
        ring = self._rings.pop(segment, None)
        if ring is not None:
            ring.close()

    def close(self) -> None:
        for ring in self._rings.values():
            ring.close()
        self._rings.clear()


def _check_bgr(image: npt.NDArray[Any], where: str) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"{where}: expected a BGR uint8 HxWx3 image, got {image.dtype} of shape {image.shape}"
        )


__all__ = ["LOCATIONS", "FrameReader", "FrameStore", "Location"]
