"""From FrameMetadata and pixels to what the sinks get: boxes mapped from the source frame's
coordinates to the pixels at hand, frames tiled, then drawn (see tiler.py for the order)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from heron.core.framestore import Letterbox
from heron.overlay.osd import OnScreenDisplay
from heron.overlay.tiler import Tiler
from heron.v1.detection_pb2 import FrameMetadata

Image = npt.NDArray[np.uint8]


@dataclass(frozen=True, eq=False)  # compared by identity: it holds a numpy array
class Loaded:
    """One source frame: its metadata and its pixels (muxer- or source-sized)."""

    meta: FrameMetadata
    image: Image


def source_boxes(meta: FrameMetadata) -> npt.NDArray[np.float64]:
    """The objects' boxes (N x 4, x1 y1 x2 y2) in the source frame's pixels."""
    boxes = np.array(
        [(o.bbox.left, o.bbox.top, o.bbox.width, o.bbox.height) for o in meta.objects],
        dtype=np.float64,
    ).reshape(-1, 4)
    boxes[:, 2:] += boxes[:, :2]
    return boxes


class Compositor:
    def __init__(self, osd: OnScreenDisplay, tiler: Tiler | None, *, muxer_padding: bool) -> None:
        self.osd, self.tiler, self.muxer_padding = osd, tiler, muxer_padding

    def pixel_boxes(self, frame: Loaded) -> npt.NDArray[np.float64]:
        """Boxes in the pixels we have: inference gives source coordinates; frames of a muxer
        batch are muxer-sized, so apply the muxer's scaling (with its padding) to them."""
        boxes = source_boxes(frame.meta)
        ref = frame.meta.frame
        h, w = frame.image.shape[:2]
        if ref.width and ref.height and (ref.width, ref.height) != (w, h):
            mux = Letterbox.fit(ref.width, ref.height, w, h, padding=self.muxer_padding)
            boxes = mux.to_output(boxes)
        return boxes

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
