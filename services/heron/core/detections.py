"""`Detections`: the one checked box type, from the detector's grids to the overlay.

Every stage passes the objects of one image as a `Detections`: postprocess makes it, the
inference service turns it into `heron.v1.DetectedObject`s (`to_proto`), the tracker and the
overlay read those back (`from_proto`), evaluation scores it. Fields, checked and normalised
when the object is made, so no later stage re-checks shapes or dtypes:

- `xyxy` `(N, 4)` float32 x1, y1, x2, y2 in pixels (of the image the producer says: the
  network input for postprocess without a frame geometry, the source frame otherwise);
- `scores` `(N,)` float32, `class_ids` `(N,)` int64 >= 0;
- `tracker_ids` `(N,)` int64 >= 0 or None (no tracker ran; 0 = not tracked, as in the proto);
- `labels` `(N,)` str or None (no names given; "" = no name, as in the proto).

float32, not float64: the network emits float32, `heron.v1.BoundingBox` carries float32, and
nvinfer and TAO cluster and evaluate in float32; float64 would claim a precision no producer
has and change the AP arithmetic. float32 still resolves 1/1000 of a pixel on an 8K frame.
Stages that keep float64 state (the trackers' filters) convert on their side.

Errors say what was expected and what came (`scores must have shape (1,), but got shape (2,)`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from heron.core.boxes import ltwh_to_xyxy, xyxy_to_ltwh
from heron.v1.detection_pb2 import BoundingBox, DetectedObject, FrameMetadata

FloatArray = NDArray[np.float32]
IntArray = NDArray[np.int64]
StrArray = NDArray[np.str_]
Index = int | slice | Sequence[int] | NDArray[Any]


class DetectionsError(ValueError):
    """A box array, score, id or label was not of the shape, type or range expected."""


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"[:120]


def check_boxes(value: ArrayLike, field: str = "xyxy") -> FloatArray:
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
    """`value` as `(n,)` int64 ids >= 0; floats are accepted only when whole numbers."""
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


def check_labels(value: ArrayLike, n: int, field: str = "labels") -> StrArray:
    """`value` as `(n,)` strings."""
    raw = np.asarray(value)
    if raw.ndim != 1 or raw.shape[0] != n:
        raise DetectionsError(f"{field} must have shape ({n},), but got shape {raw.shape}")
    if raw.size and raw.dtype.kind != "U":
        raise DetectionsError(f"{field} must be strings, but got {_describe(raw)}")
    return raw.astype(np.str_)


@dataclass(frozen=True, eq=False, init=False)  # compared by identity: it holds numpy arrays
class Detections:
    """The objects of one image; see the module docstring for the fields."""

    xyxy: FloatArray
    scores: FloatArray
    class_ids: IntArray
    tracker_ids: IntArray | None
    labels: StrArray | None

    def __init__(
        self,
        xyxy: ArrayLike,
        scores: ArrayLike,
        class_ids: ArrayLike,
        *,
        tracker_ids: ArrayLike | None = None,
        labels: ArrayLike | None = None,
    ) -> None:
        boxes = check_boxes(xyxy)
        n = boxes.shape[0]
        object.__setattr__(self, "xyxy", boxes)
        object.__setattr__(self, "scores", check_scores(scores, n))
        object.__setattr__(self, "class_ids", check_class_ids(class_ids, n))
        ids = None if tracker_ids is None else check_class_ids(tracker_ids, n, "tracker_ids")
        object.__setattr__(self, "tracker_ids", ids)
        names = None if labels is None else check_labels(labels, n)
        object.__setattr__(self, "labels", names)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    @staticmethod
    def concat(parts: Iterable[Detections]) -> Detections:
        """All rows of `parts`, in order. A field some parts lack is filled with the proto's
        "unset" value for their rows (tracker id 0, label "")."""
        items = list(parts)
        if not items:
            return Detections.empty()
        tracked = any(d.tracker_ids is not None for d in items)
        named = any(d.labels is not None for d in items)
        return Detections(
            np.concatenate([d.xyxy for d in items]),
            np.concatenate([d.scores for d in items]),
            np.concatenate([d.class_ids for d in items]),
            tracker_ids=np.concatenate([d._tracker_ids_or_zero() for d in items])
            if tracked
            else None,
            labels=np.concatenate([d._labels_or_empty() for d in items]) if named else None,
        )

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def __getitem__(self, index: Index) -> Detections:
        """Rows by position, slice, index array or boolean mask; always a `Detections`."""
        rows = self._rows(index)
        return Detections(
            self.xyxy[rows],
            self.scores[rows],
            self.class_ids[rows],
            tracker_ids=None if self.tracker_ids is None else self.tracker_ids[rows],
            labels=None if self.labels is None else self.labels[rows],
        )

    def _rows(self, index: Index) -> int | slice | list[int] | NDArray[Any]:
        if isinstance(index, int | np.integer):
            return [int(index)]  # a one-row Detections, not a row of each array
        if isinstance(index, slice):
            return index
        rows = np.asarray(index)
        if rows.dtype == np.bool_:
            if rows.shape != (len(self),):
                raise DetectionsError(
                    f"a boolean mask must have shape ({len(self)},), but got shape {rows.shape}"
                )
            return rows
        if rows.size == 0:
            return rows.astype(np.intp)  # `[]` comes as float64: numpy would refuse it
        if not np.issubdtype(rows.dtype, np.integer):
            raise DetectionsError(
                f"an index must be row numbers or a boolean mask, but got {_describe(rows)}"
            )
        return rows

    def of_class(self, class_id: int) -> Detections:
        return self[self.class_ids == class_id]

    def with_class_names(self, names: Sequence[str]) -> Detections:
        """The same rows, labelled by class id from `names` ("" past its end)."""
        labels = [names[c] if c < len(names) else "" for c in self.class_ids.tolist()]
        return Detections(
            self.xyxy,
            self.scores,
            self.class_ids,
            tracker_ids=self.tracker_ids,
            labels=np.asarray(labels, dtype=np.str_),
        )

    def _tracker_ids_or_zero(self) -> IntArray:
        return np.zeros(len(self), np.int64) if self.tracker_ids is None else self.tracker_ids

    def _labels_or_empty(self) -> StrArray:
        return np.full(len(self), "", np.str_) if self.labels is None else self.labels

    # --- the proto edge: heron.v1.DetectedObject keeps left, top, width, height -------------

    @classmethod
    def from_proto(cls, source: FrameMetadata | Iterable[DetectedObject]) -> Detections:
        """A frame's objects (or any objects). `tracker_ids` is None when no object has one,
        `labels` None when none has one; attributes and component ids are not kept."""
        objects = list(source.objects if isinstance(source, FrameMetadata) else source)
        ltwh = np.array(
            [(o.bbox.left, o.bbox.top, o.bbox.width, o.bbox.height) for o in objects], np.float64
        ).reshape(-1, 4)
        _check_ltwh(ltwh)
        tracker_ids = [o.tracker_id for o in objects]
        labels = [o.label for o in objects]
        return cls(
            ltwh_to_xyxy(ltwh),
            [o.confidence for o in objects],
            np.array([o.class_id for o in objects], np.int64),
            tracker_ids=np.array(tracker_ids, np.int64) if any(tracker_ids) else None,
            labels=np.array(labels, np.str_) if any(labels) else None,
        )

    def to_proto(self, component_id: int = 0) -> list[DetectedObject]:
        """One `DetectedObject` a row; `component_id` is the detector's gie-unique-id."""
        rows = zip(
            bounding_boxes(self.xyxy),
            self.scores.tolist(),
            self.class_ids.tolist(),
            self._tracker_ids_or_zero().tolist(),
            self._labels_or_empty().tolist(),
            strict=True,
        )
        return [
            DetectedObject(
                bbox=bbox,
                class_id=class_id,
                label=label,
                confidence=score,
                tracker_id=tracker_id,
                component_id=component_id,
            )
            for bbox, score, class_id, tracker_id, label in rows
        ]


def bounding_boxes(xyxy: ArrayLike) -> list[BoundingBox]:
    """xyxy boxes `(N, 4)` (or one `(4,)`) as the proto's left, top, width, height: computed in
    float64 (a tracker's boxes are float64, and must not round before the subtraction), stored
    as the proto's float32."""
    ltwh = xyxy_to_ltwh(np.asarray(xyxy, np.float64).reshape(-1, 4)).tolist()
    return [BoundingBox(left=x, top=y, width=w, height=h) for x, y, w, h in ltwh]


def _check_ltwh(ltwh: NDArray[np.float64]) -> None:
    """The proto's boxes: finite, width and height >= 0; named as the objects' fields, so the
    tracker's dead letters say which object of the frame was wrong."""
    bad = ~(np.isfinite(ltwh).all(axis=1) & (ltwh[:, 2:] >= 0).all(axis=1))
    if bad.any():
        i = int(np.argmax(bad))
        left, top, width, height = ltwh[i].tolist()
        raise DetectionsError(
            f"objects[{i}].bbox: expected finite left/top and width, height >= 0, got "
            f"left={left} top={top} width={width} height={height}"
        )
