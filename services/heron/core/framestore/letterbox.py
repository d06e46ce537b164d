"""Where a source frame lands inside a muxer-sized frame, and back.

Streammux scales every frame to its output width/height. Without padding the two axes scale
independently; with `enable-padding` the aspect ratio is kept and the rest is black padding on
the right and bottom (the image sits at the top-left corner, as nvinfer's default
`symmetric-padding=0` does). The mapping is a pure function of the source size (the FrameRef's
width/height inside a FrameBatch) and the output size (FrameBatch width/height), so any stage
can invert it; it uses the exact scale of the pixels `cv2.resize` produced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Letterbox:
    """Source (src_w x src_h) placed at (offset_x, offset_y) as content_w x content_h pixels
    inside an output of dst_w x dst_h."""

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


def _boxes(boxes: npt.ArrayLike) -> npt.NDArray[np.float64]:
    b = np.array(boxes, dtype=np.float64, copy=True)
    if b.ndim == 1:
        b = b.reshape(1, -1)
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"letterbox: expected boxes of shape (N, 4), got {b.shape}")
    return b
