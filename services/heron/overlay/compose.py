"""From FrameMetadata and pixels to what the sinks get: boxes mapped from the source frame's
coordinates to the pixels at hand, frames tiled, then drawn (see tiler.py for the order)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from heron.core.detections import Detections
from heron.core.framestore import Letterbox
from heron.overlay.osd import OnScreenDisplay
from heron.overlay.tiler import Tiler
from heron.v1.detection_pb2 import FrameMetadata

Image = npt.NDArray[np.uint8]


@dataclass(frozen=True, eq=False)  # compared by identity: it holds a numpy array
class Loaded:
    """One source frame: its metadata and its pixels (of the ref's stored size)."""

    meta: FrameMetadata
    image: Image


def source_boxes(meta: FrameMetadata) -> npt.NDArray[np.float64]:
    """The objects' boxes (N x 4, x1 y1 x2 y2) in the source frame's pixels, in float64 for
    the scalings that map them onto the pixels at hand."""
    return Detections.from_proto(meta).xyxy.astype(np.float64)


class Compositor:
    def __init__(self, osd: OnScreenDisplay, tiler: Tiler | None) -> None:
        self.osd, self.tiler = osd, tiler

    def pixel_boxes(self, frame: Loaded) -> npt.NDArray[np.float64]:
        """Boxes in the pixels we have: inference gives source coordinates, and the frame's
        ref says where the source went in its stored pixels (the muxer's scaling and padding
        for frames of a muxer batch, the identity for ingest's own frames)."""
        boxes = source_boxes(frame.meta)
        ref = frame.meta.frame
        if not (ref.width or ref.stored_width):
            return boxes  # a ref that gives no size: nothing to map with
        return Letterbox.from_proto(ref).to_output(boxes)

    def draw(self, frame: Loaded) -> Image:
        """One frame drawn in place (no tiler, or a link-to-demux sink); returns it."""
        self.osd.draw(frame.image, frame.meta.objects, self.pixel_boxes(frame))
        self.osd.draw_clock(frame.image)
        return frame.image

    def tile(self, frames: Sequence[Loaded]) -> tuple[Image, list[Loaded]]:
        """Place and draw every frame on the tiler's canvas; returns the canvas and the frames
        that had no tile (source id beyond rows x columns)."""
        if self.tiler is None:
            raise RuntimeError("Compositor.tile: no [tiled-display] enabled")
        untiled: list[Loaded] = []
        for frame in frames:
            tile = self.tiler.place(frame.meta.frame.source_id, frame.image)
            if tile is None:
                untiled.append(frame)
                continue
            boxes = tile.to_tile(self.pixel_boxes(frame))
            self.osd.draw(tile.view(self.tiler.canvas), frame.meta.objects, boxes)
        if self.osd.style.clock is None:
            return self.tiler.canvas, untiled
        # The canvas keeps stale tiles between composites: a clock drawn on it would smear.
        out = self.tiler.canvas.copy()
        self.osd.draw_clock(out)
        return out, untiled


def composites(metas: Sequence[FrameMetadata]) -> list[list[int]]:
    """Split a read into composites of at most one frame per source, in order: a second frame
    of a source starts the next composite (the tiler shows one frame per tile at a time)."""
    groups: list[list[int]] = []
    seen: set[str] = set()
    for i, meta in enumerate(metas):
        key = meta.frame.stream_id
        if not groups or key in seen:
            groups.append([])
            seen = set()
        groups[-1].append(i)
        seen.add(key)
    return groups
