"""What every tracker takes and gives: detections of one frame in, tracked objects out.

Boxes are x1, y1, x2, y2 in the source frame's pixels (FrameMetadata's coordinates). Trackers
that look at pixels get a `Frame`: the image, possibly scaled to tracker-width x tracker-height,
and the scale that maps source pixels onto it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

Boxes = npt.NDArray[np.float64]  # N x 4, x1 y1 x2 y2
Image = npt.NDArray[np.uint8]  # H x W x 3 BGR


@dataclass(frozen=True)
class Detections:
    """A frame's detector output: boxes (N x 4 xyxy), scores (N) and class ids (N)."""

    boxes: Boxes
    scores: npt.NDArray[np.float64]
    class_ids: npt.NDArray[np.int64]

    def __post_init__(self) -> None:
        n = len(self.boxes)
        if self.boxes.shape != (n, 4):
            raise ValueError(f"Detections.boxes: expected shape (N, 4), got {self.boxes.shape}")
        for name in ("scores", "class_ids"):
            shape = getattr(self, name).shape
            if shape != (n,):
                raise ValueError(f"Detections.{name}: expected shape ({n},), got {shape}")
        if n and not np.all(self.boxes[:, 2:] >= self.boxes[:, :2]):
            raise ValueError("Detections.boxes: expected x2 >= x1 and y2 >= y1 in every box")

    @classmethod
    def of(
        cls,
        boxes: npt.ArrayLike,
        scores: npt.ArrayLike | None = None,
        class_ids: npt.ArrayLike | None = None,
    ) -> Detections:
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        s = np.ones(len(b)) if scores is None else np.asarray(scores, dtype=np.float64)
        c = np.zeros(len(b), np.int64) if class_ids is None else np.asarray(class_ids, np.int64)
        return cls(b, s, c)

    @classmethod
    def empty(cls) -> Detections:
        return cls.of(np.zeros((0, 4)))

    def __len__(self) -> int:
        return len(self.boxes)


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
    """One object a tracker reports for a frame.

    `detection` is the index of the detection it was matched with in this frame, or None when
    the tracker carried the object on its own (a frame without inference)."""

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
