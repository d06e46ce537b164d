"""Where a source frame lands inside a muxer-sized frame, and back.

Streammux scales every frame to its output width/height. Without padding the two axes scale
independently; with `enable-padding` the aspect ratio is kept and the rest is black padding on
the right and bottom (the image sits at the top-left corner, as nvinfer's default
`symmetric-padding=0` does). Whoever stores the pixels writes the mapping into the FrameRef
(`fill`: source width/height, stored_width/height, placement) and any stage reads it back
(`from_proto`) to map boxes either way; it uses the exact scale of the pixels `cv2.resize`
produced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from heron.core.framestore.errors import BadFrameRefError
from heron.v1.frame_pb2 import FrameRef, Placement


def stored_size(ref: FrameRef) -> tuple[int, int]:
    """Width, height of the pixels `ref` points at. A ref written before stored_width/height
    existed has pixels of its own width x height."""
    if ref.stored_width and ref.stored_height:
        return ref.stored_width, ref.stored_height
    return ref.width, ref.height


@dataclass(frozen=True)
class Letterbox:
    """Source (src_w x src_h) placed at (offset_x, offset_y) as content_w x content_h pixels
    inside an output of dst_w x dst_h. In a FrameRef: width/height, stored_width/height and
    `placement` (heron.v1.Placement holds content and offsets)."""

    src_w: int
    src_h: int
    dst_w: int
    dst_h: int
    content_w: int
    content_h: int
    offset_x: int = 0
    offset_y: int = 0

    @classmethod
    def fit(cls, src_w: int, src_h: int, dst_w: int, dst_h: int, *, padding: bool) -> Letterbox:
        for name, value in (("src_w", src_w), ("src_h", src_h), ("dst_w", dst_w), ("dst_h", dst_h)):
            if value < 1:
                raise ValueError(f"letterbox: expected {name} >= 1, got {value}")
        if not padding:
            return cls(src_w, src_h, dst_w, dst_h, dst_w, dst_h)
        scale = min(dst_w / src_w, dst_h / src_h)
        content_w = min(dst_w, max(1, round(src_w * scale)))
        content_h = min(dst_h, max(1, round(src_h * scale)))
        return cls(src_w, src_h, dst_w, dst_h, content_w, content_h)

    @classmethod
    def identity(cls, width: int, height: int) -> Letterbox:
        """A frame stored as it is (what ingest stores)."""
        return cls.fit(width, height, width, height, padding=False)

    @classmethod
    def from_proto(cls, ref: FrameRef) -> Letterbox:
        """The mapping `ref` carries: its source size (width/height) into its stored pixels
        (stored_width/height) at its `placement`. An unset placement means the source fills
        the stored pixels whole; raises BadFrameRefError for sizes that place nothing."""
        dst_w, dst_h = stored_size(ref)
        src_w, src_h = (ref.width, ref.height) if ref.width and ref.height else (dst_w, dst_h)
        if not (src_w and src_h):
            raise BadFrameRefError(
                f"{_name(ref)}: no size (width/height and stored_width/height are 0)"
            )
        if not ref.HasField("placement"):
            return cls(src_w, src_h, dst_w, dst_h, dst_w, dst_h)
        p = ref.placement
        box = cls(src_w, src_h, dst_w, dst_h, p.content_width, p.content_height,
                  p.offset_x, p.offset_y)  # fmt: skip
        box._check_inside(ref)
        return box

    def _check_inside(self, ref: FrameRef) -> None:
        content_fits = (
            self.content_w >= 1
            and self.content_h >= 1
            and self.offset_x + self.content_w <= self.dst_w
            and self.offset_y + self.content_h <= self.dst_h
        )
        if not content_fits:
            raise BadFrameRefError(
                f"{_name(ref)}: placement {self.content_w}x{self.content_h} at "
                f"({self.offset_x}, {self.offset_y}) does not fit the stored "
                f"{self.dst_w}x{self.dst_h} pixels"
            )

    def to_proto(self) -> Placement:
        """The placement message (the sizes it is relative to are the FrameRef's: see `fill`)."""
        return Placement(
            content_width=self.content_w,
            content_height=self.content_h,
            offset_x=self.offset_x,
            offset_y=self.offset_y,
        )

    def fill(self, ref: FrameRef) -> None:
        """Write this mapping into `ref`: the source size, the stored size and the placement."""
        ref.width, ref.height = self.src_w, self.src_h
        ref.stored_width, ref.stored_height = self.dst_w, self.dst_h
        ref.placement.CopyFrom(self.to_proto())

    @property
    def scale_x(self) -> float:
        return self.content_w / self.src_w

    @property
    def scale_y(self) -> float:
        return self.content_h / self.src_h

    @property
    def padded(self) -> bool:
        return (self.content_w, self.content_h) != (self.dst_w, self.dst_h)

    def to_output(self, boxes: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Boxes (N x 4, x1 y1 x2 y2) in source pixels -> output pixels."""
        b = _boxes(boxes)
        b[:, [0, 2]] = b[:, [0, 2]] * self.scale_x + self.offset_x
        b[:, [1, 3]] = b[:, [1, 3]] * self.scale_y + self.offset_y
        return b

    def to_source(self, boxes: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Boxes (N x 4, x1 y1 x2 y2) in output pixels -> source pixels, clipped to the source
        (a box reaching into the padding ends at the image edge)."""
        b = _boxes(boxes)
        b[:, [0, 2]] = (b[:, [0, 2]] - self.offset_x) / self.scale_x
        b[:, [1, 3]] = (b[:, [1, 3]] - self.offset_y) / self.scale_y
        b[:, [0, 2]] = b[:, [0, 2]].clip(0, self.src_w)
        b[:, [1, 3]] = b[:, [1, 3]].clip(0, self.src_h)
        return b

    def apply(self, image: npt.NDArray[Any], out: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Scale `image` (src_h x src_w x C) into `out` (dst_h x dst_w x C), padding black."""
        import cv2

        if image.shape[:2] != (self.src_h, self.src_w):
            raise ValueError(
                f"letterbox: expected a {self.src_w}x{self.src_h} image, got "
                f"{image.shape[1]}x{image.shape[0]}"
            )
        if out.shape[:2] != (self.dst_h, self.dst_w):
            raise ValueError(
                f"letterbox: expected a {self.dst_w}x{self.dst_h} output, got "
                f"{out.shape[1]}x{out.shape[0]}"
            )
        y, x = self.offset_y, self.offset_x
        region = out[y : y + self.content_h, x : x + self.content_w]
        if (self.content_w, self.content_h) == (self.src_w, self.src_h):
            np.copyto(region, image)
        else:
            # INTER_AREA to shrink (no aliasing), INTER_LINEAR to grow, as OpenCV advises.
            shrink = self.content_w < self.src_w or self.content_h < self.src_h
            method = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
            cv2.resize(image, (self.content_w, self.content_h), dst=region, interpolation=method)
        if self.padded:
            out[:, x + self.content_w :] = 0
            out[y + self.content_h :, : x + self.content_w] = 0
        return out


def _name(ref: FrameRef) -> str:
    return f"FrameRef {ref.stream_id or '<no stream_id>'}#{ref.frame_number}"


def _boxes(boxes: npt.ArrayLike) -> npt.NDArray[np.float64]:
    b = np.array(boxes, dtype=np.float64, copy=True)
    if b.ndim == 1:
        b = b.reshape(1, -1)
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"letterbox: expected boxes of shape (N, 4), got {b.shape}")
    return b
