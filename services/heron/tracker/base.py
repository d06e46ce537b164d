"""What every tracker takes and gives: a frame's `Detections` in, tracked objects out.

Boxes are x1, y1, x2, y2 in the source frame's pixels (FrameMetadata's coordinates). The input
is the core's `Detections` (float32, as the metadata carries them); a tracker's own state and
output are float64 (`detection_box`, `detection_scores` convert). Trackers that look at pixels
get a `Frame`: the image, possibly scaled to tracker-width x tracker-height, and the scale that
maps source pixels onto it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from heron.core.detections import Detections

Boxes = npt.NDArray[np.float64]  # N x 4, x1 y1 x2 y2
Image = npt.NDArray[np.uint8]  # H x W x 3 BGR


def detection_box(detections: Detections, index: int) -> npt.NDArray[np.float64]:
    """Detection `index`'s box as float64: targets, Kalman and correlation filters keep float64
    state, and their arithmetic must not drop to float32 with it."""
    box: npt.NDArray[np.float64] = detections.xyxy[index].astype(np.float64)
    return box


def detection_scores(detections: Detections) -> npt.NDArray[np.float64]:
    """Scores as float64, so a threshold compares as the Python float it is: numpy would round
    0.7 to float32 (0.69999999) for a float32 array and let a 0.69999999 score pass."""
    return detections.scores.astype(np.float64)


@dataclass(frozen=True)
class Frame:
    """Pixels for trackers that use them: `image` shows the source frame scaled by (sx, sy)."""

    image: Image
    sx: float = 1.0
    sy: float = 1.0

    def to_image(self, boxes: Boxes) -> Boxes:
        out: Boxes = boxes * np.array([self.sx, self.sy, self.sx, self.sy])
        return out

    def to_source(self, boxes: Boxes) -> Boxes:
        out: Boxes = boxes / np.array([self.sx, self.sy, self.sx, self.sy])
        return out


@dataclass(frozen=True)
class Tracked:
    """One object a tracker reports for a frame: the tracker's own result, not a detection.

    `box` is the tracker's float64 estimate (a Kalman or correlation filter's, not necessarily
    the detector's box). `detection` is the index of the detection it was matched with in this
    frame, or None when the tracker carried the object on its own (a frame without inference):
    the service copies that detection's metadata object (label, attributes) onto the output."""

    track_id: int
    box: npt.NDArray[np.float64]
    confidence: float
    class_id: int
    detection: int | None


class Tracker(Protocol):
    """A multi-object tracker of one stream.

    `detections` is None on frames the detector skipped (nvinfer `interval`): trackers then
    carry their targets forward without counting a miss. `frame` is None for trackers that
    need no pixels, or when the pixels are gone; trackers that use pixels fall back to
    association by overlap for that frame."""

    def update(self, detections: Detections | None, frame: Frame | None) -> list[Tracked]: ...

    def reset(self) -> None: ...
