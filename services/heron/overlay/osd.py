"""On-screen display: boxes, labels with a background, tracker ids and a clock, as nvdsosd.

Boxes are drawn as four numpy bands *inside* the box (border-width pixels wide), so a box from
(x1, y1) to (x2, y2) colours exactly the pixels x1 <= x < x2, y1 <= y < y2 of its outline;
fills and translucent label backgrounds blend only their own region. Labels go where
heron.overlay.labels places them (nvdsosd's place, unless that hides another label) and are
drawn after every box, so no outline crosses a label. Text is OpenCV's `putText` with the
Hershey face `[osd] font` maps to (see heron.overlay.fonts).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from heron.core.config.models import Pipeline
from heron.overlay.colors import BGR, ClassColors, alpha, to_bgr
from heron.overlay.fonts import HersheyFont, hershey_font
from heron.overlay.labels import Box, Size, place_labels
from heron.v1.detection_pb2 import DetectedObject

Image = npt.NDArray[np.uint8]
LABEL_PAD = 2  # pixels between label text and the edge of its background


@dataclass(frozen=True)
class TextStyle:
    font: HersheyFont
    scale: float
    thickness: int
    color: BGR

    @classmethod
    def make(cls, font: HersheyFont, points: int, color: BGR) -> TextStyle:
        thickness = 1 if points < 20 else 2
        return cls(font, font.scale(points, thickness), thickness, color)


@dataclass(frozen=True)
class OsdStyle:
    """Everything the OSD draws with, resolved once from the pipeline config."""

    colors: ClassColors
    border_width: int
    text: TextStyle
    text_bg: BGR
    text_bg_alpha: float
    display_bbox: bool = True
    display_text: bool = True
    display_tracking_id: bool = False
    clock: TextStyle | None = None
    clock_xy: tuple[int, int] = (0, 0)

    @classmethod
    def from_pipeline(cls, pipeline: Pipeline) -> OsdStyle:
        """[osd] enable=0 is deepstream-app without its nvdsosd: the sinks get frames undrawn."""
        osd = pipeline.osd
        font = hershey_font(osd.font)
        clock = TextStyle.make(font, osd.clock_text_size, to_bgr(osd.clock_color))
        return cls(
            colors=ClassColors.from_config(pipeline.primary_gie, osd),
            border_width=osd.border_width,
            text=TextStyle.make(font, osd.text_size, to_bgr(osd.text_color)),
            text_bg=to_bgr(osd.text_bg_color),
            text_bg_alpha=alpha(osd.text_bg_color),
            display_bbox=osd.enable and osd.display_bbox,
            display_text=osd.enable and osd.display_text,
            display_tracking_id=pipeline.tracker.enable and pipeline.tracker.display_tracking_id,
            clock=clock if osd.enable and osd.show_clock else None,
            clock_xy=(osd.clock_x_offset, osd.clock_y_offset),
        )


def label_text(obj: DetectedObject, with_id: bool) -> str:
    name = obj.label or f"class {obj.class_id}"
    return f"{name} {obj.tracker_id}" if with_id and obj.tracker_id else name


class OnScreenDisplay:
    def __init__(self, style: OsdStyle) -> None:
        self.style = style

    def draw(
        self, image: Image, objects: Sequence[DetectedObject], boxes: npt.NDArray[np.float64]
    ) -> None:
        """Draw `objects` on `image` in place; `boxes` (N x 4, x1 y1 x2 y2) are their boxes in
        this image's pixels (the caller maps them from the frame's coordinates)."""
        if len(objects) != len(boxes):
            raise ValueError(f"osd: {len(objects)} objects but {len(boxes)} boxes")
        h, w = image.shape[:2]
        pixels = np.rint(boxes).astype(np.int64)
        pixels[:, [0, 2]] = pixels[:, [0, 2]].clip(0, w)
        pixels[:, [1, 3]] = pixels[:, [1, 3]].clip(0, h)
        s = self.style
        labelled: list[tuple[str, Box]] = []
        for obj, (x1, y1, x2, y2) in zip(objects, pixels.tolist(), strict=True):
            if x2 <= x1 or y2 <= y1:
                continue  # wholly outside the image
            fill = s.colors.fill(obj.class_id)
            if fill is not None:
                _blend(image[y1:y2, x1:x2], to_bgr(fill), alpha(fill))
            if s.display_bbox and s.border_width > 0:
                _outline(
                    image, (x1, y1, x2, y2), to_bgr(s.colors.border(obj.class_id)), s.border_width
                )
            if s.display_text:
                labelled.append((label_text(obj, s.display_tracking_id), (x1, y1, x2, y2)))
        if labelled:
            self._labels(image, labelled)

    def draw_clock(self, image: Image, now: float | None = None) -> None:
        clock = self.style.clock
        if clock is None:
            return
        import cv2

        text = time.strftime("%H:%M:%S", time.localtime(now))
        (_, th), _ = cv2.getTextSize(text, clock.font.face, clock.scale, clock.thickness)
        x, y = self.style.clock_xy
        cv2.putText(
            image, text, (x, y + th), clock.font.face, clock.scale, clock.color,
            clock.thickness, cv2.LINE_AA,
        )  # fmt: skip

    def _labels(self, image: Image, labelled: list[tuple[str, Box]]) -> None:
        """Each label on its background, where heron.overlay.labels places it."""
        import cv2

        t = self.style.text
        measured = [
            cv2.getTextSize(text, t.font.face, t.scale, t.thickness) for text, _ in labelled
        ]
        sizes: list[Size] = [
            (tw + 2 * LABEL_PAD, th + base + 2 * LABEL_PAD) for (tw, th), base in measured
        ]
        h, w = image.shape[:2]
        places = place_labels([box for _, box in labelled], sizes, w, h)
        for (text, _), ((_, th), _), (bw, bh), (left, top) in zip(
            labelled, measured, sizes, places, strict=True
        ):
            region = image[top : min(top + bh, h), left : min(left + bw, w)]
            _blend(region, self.style.text_bg, self.style.text_bg_alpha)
            cv2.putText(
                image, text, (left + LABEL_PAD, top + LABEL_PAD + th), t.font.face, t.scale,
                t.color, t.thickness, cv2.LINE_AA,
            )  # fmt: skip


def _outline(image: Image, box: tuple[int, int, int, int], color: BGR, width: int) -> None:
    x1, y1, x2, y2 = box
    bands = (
        image[y1 : min(y1 + width, y2), x1:x2],
        image[max(y2 - width, y1) : y2, x1:x2],
        image[y1:y2, x1 : min(x1 + width, x2)],
        image[y1:y2, max(x2 - width, x1) : x2],
    )
    for band in bands:
        band[...] = color


def _blend(region: Image, color: BGR, weight: float) -> None:
    if region.size == 0 or weight <= 0:
        return
    if weight >= 1:
        region[...] = color
        return
    import cv2

    solid = np.empty_like(region)
    solid[...] = color
    # cv2 writes into the view: region is a slice of the caller's image.
    cv2.addWeighted(region, 1 - weight, solid, weight, 0, dst=region)
