"""`GroundTruth`: the labelled boxes of one image, checked like `Detections`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from heron.core.detections import FloatArray, IntArray, check_boxes, check_class_ids


@dataclass(frozen=True, eq=False)
class GroundTruth:
    """Boxes `(N, 4)` xyxy float32 in the same pixels as the predictions, `class_ids` `(N,)`."""

    boxes: FloatArray
    class_ids: IntArray

    def __post_init__(self) -> None:
        boxes = check_boxes(self.boxes, "ground truth boxes")
        object.__setattr__(self, "boxes", boxes)
        ids = check_class_ids(self.class_ids, boxes.shape[0], "ground truth class_ids")
        object.__setattr__(self, "class_ids", ids)

    @classmethod
    def from_arrays(cls, boxes: ArrayLike, class_ids: ArrayLike) -> GroundTruth:
        return cls(np.asarray(boxes, dtype=np.float32), np.asarray(class_ids))

    @classmethod
    def empty(cls) -> GroundTruth:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.int64))

    def __len__(self) -> int:
        return int(self.boxes.shape[0])
