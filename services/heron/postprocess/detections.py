"""`Detections`: the one checked type for boxes that flows from postprocess to evaluation and out.

Boxes are `(N, 4)` float32 `x1, y1, x2, y2` in pixels (of whatever image the producer says: the
network input for `postprocess` without a frame geometry, the frame with one), `scores` `(N,)`
float32, `class_ids` `(N,)` int64. Arrays are checked and normalised when the object is made, so
every later stage can rely on shapes and dtypes; errors say what was expected and what came.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from heron.v1 import detection_pb2

FloatArray = NDArray[np.float32]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


class DetectionsError(ValueError):
    """A box array, score or class id was not of the shape, type or range expected."""


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"[:120]


def check_boxes(value: ArrayLike, field: str = "boxes") -> FloatArray:
    """`value` as a `(N, 4)` float32 array of finite xyxy boxes with x2 >= x1 and y2 >= y1."""
    try:
        boxes = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise DetectionsError(f"{field} must be numbers, but got {_describe(value)}") from e
    if boxes.ndim == 1 and boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise DetectionsError(
            f"{field} must have shape (N, 4) as x1, y1, x2, y2, but got shape {boxes.shape}"
        )
    bad = ~np.isfinite(boxes).all(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        raise DetectionsError(f"{field}[{i}] must be finite, but got {boxes[i].tolist()}")
    inverted = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    if inverted.any():
        i = int(np.argmax(inverted))
        raise DetectionsError(
            f"{field}[{i}] must have x2 >= x1 and y2 >= y1, but got {boxes[i].tolist()}"
        )
    return np.ascontiguousarray(boxes)


def check_class_ids(value: ArrayLike, n: int, field: str = "class_ids") -> IntArray:
    """`value` as `(n,)` int64 class ids >= 0; floats are accepted only when whole numbers."""
    raw = np.asarray(value)
    if raw.ndim != 1 or raw.shape[0] != n:
        raise DetectionsError(f"{field} must have shape ({n},), but got shape {raw.shape}")
    whole = np.issubdtype(raw.dtype, np.floating) and bool(np.all(raw == np.round(raw)))
    if raw.size and not np.issubdtype(raw.dtype, np.integer) and not whole:
        raise DetectionsError(f"{field} must be whole numbers, but got {_describe(raw)}")
    ids = raw.astype(np.int64)
    if ids.size and ids.min() < 0:
        i = int(np.argmin(ids))
        raise DetectionsError(f"{field}[{i}] must be >= 0, but got {int(ids[i])}")
    return ids


def check_scores(value: ArrayLike, n: int, field: str = "scores") -> FloatArray:
    """`value` as `(n,)` float32 finite scores."""
    try:
        scores = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise DetectionsError(f"{field} must be numbers, but got {_describe(value)}") from e
    if scores.ndim != 1 or scores.shape[0] != n:
        raise DetectionsError(f"{field} must have shape ({n},), but got shape {scores.shape}")
    if not np.isfinite(scores).all():
        i = int(np.argmax(~np.isfinite(scores)))
        raise DetectionsError(f"{field}[{i}] must be finite, but got {float(scores[i])}")
    return scores


@dataclass(frozen=True, eq=False)
class Detections:
    """Boxes of one image: `boxes` (N, 4) xyxy float32, `scores` (N,), `class_ids` (N,)."""

    boxes: FloatArray
    scores: FloatArray
    class_ids: IntArray

    def __post_init__(self) -> None:
        boxes = check_boxes(self.boxes)
        n = boxes.shape[0]
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "scores", check_scores(self.scores, n))
        object.__setattr__(self, "class_ids", check_class_ids(self.class_ids, n))

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    @classmethod
    def from_arrays(cls, boxes: ArrayLike, scores: ArrayLike, class_ids: ArrayLike) -> Detections:
        """Build from anything array-like (lists, other dtypes); checked like the constructor."""
        return cls(check_boxes(boxes), check_scores(scores, np.size(scores)), np.asarray(class_ids))

    @staticmethod
    def concat(parts: Iterable[Detections]) -> Detections:
        """All boxes of `parts`, in order."""
        items = list(parts)
        if not items:
            return Detections.empty()
        return Detections(
            np.concatenate([d.boxes for d in items]),
            np.concatenate([d.scores for d in items]),
            np.concatenate([d.class_ids for d in items]),
        )

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def __getitem__(self, index: int | slice | Sequence[int] | NDArray[Any]) -> Detections:
        """Rows by position, slice, index array or boolean mask; always a `Detections`."""
        if isinstance(index, int | np.integer):
            index = [int(index)]
        return Detections(self.boxes[index], self.scores[index], self.class_ids[index])

    def filter(self, mask: ArrayLike) -> Detections:
        """The rows where `mask` (a boolean array of length N) is true."""
        keep = np.asarray(mask)
        if keep.dtype != np.bool_ or keep.shape != (len(self),):
            raise DetectionsError(
                f"mask must be a boolean array of shape ({len(self)},), but got {_describe(keep)}"
            )
        return self[keep]

    def of_class(self, class_id: int) -> Detections:
        return self[self.class_ids == class_id]

    def sorted_by_score(self) -> Detections:
        """Highest score first; equal scores keep their order."""
        return self[np.argsort(-self.scores, kind="stable")]

    @property
    def widths(self) -> FloatArray:
        return self.boxes[:, 2] - self.boxes[:, 0]

    @property
    def heights(self) -> FloatArray:
        return self.boxes[:, 3] - self.boxes[:, 1]

    def to_proto(self, labels: Sequence[str] = (), component_id: int = 0) -> list[Any]:
        """`heron.v1.DetectedObject` messages (left/top/width/height), labels by class id."""
        objects = []
        for (x1, y1, x2, y2), score, cid in zip(
            self.boxes.tolist(), self.scores.tolist(), self.class_ids.tolist(), strict=True
        ):
            box = detection_pb2.BoundingBox(left=x1, top=y1, width=x2 - x1, height=y2 - y1)
            label = labels[cid] if cid < len(labels) else ""
            objects.append(
                detection_pb2.DetectedObject(
                    bbox=box,
                    class_id=cid,
                    label=label,
                    confidence=score,
                    component_id=component_id,
                )
            )
        return objects

    @classmethod
    def from_proto(cls, objects: Iterable[Any]) -> Detections:
        """The inverse of `to_proto` (labels are dropped; class ids carry the class)."""
        items = list(objects)
        boxes = [
            (o.bbox.left, o.bbox.top, o.bbox.left + o.bbox.width, o.bbox.top + o.bbox.height)
            for o in items
        ]
        return cls.from_arrays(
            np.asarray(boxes, np.float32).reshape(-1, 4),
            [o.confidence for o in items],
            np.asarray([o.class_id for o in items], np.int64),
        )
