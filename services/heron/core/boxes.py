"""Box formats and box arithmetic, in one place for every stage.

Heron's boxes are `xyxy` (x1, y1, x2, y2) in pixels. Other formats exist only at the edges:
`ltwh` (left, top, width, height: `heron.v1.BoundingBox`, OpenCV rects, what some libraries call
"xywh") and `cxcywh` (centre and size: the Kalman filter's measurement). Every function takes
float `(..., 4)` arrays (one box or N of them), never changes its input and keeps its dtype, so
a stage that computes in float32 (postprocess, as nvinfer) or float64 (the trackers' state)
gets the same arithmetic it would write by hand.
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

FloatBoxes = NDArray[np.floating[Any]]
F = TypeVar("F", bound=np.floating[Any])  # float32 in, float32 out; float64 in, float64 out


def xyxy_to_ltwh(boxes: NDArray[F]) -> NDArray[F]:
    out = boxes.copy()
    out[..., 2:] -= out[..., :2]
    return out


def ltwh_to_xyxy(boxes: NDArray[F]) -> NDArray[F]:
    out = boxes.copy()
    out[..., 2:] += out[..., :2]
    return out


def xyxy_to_cxcywh(boxes: NDArray[F]) -> NDArray[F]:
    b, out = boxes, boxes.copy()
    out[..., 0] = (b[..., 0] + b[..., 2]) / 2
    out[..., 1] = (b[..., 1] + b[..., 3]) / 2
    out[..., 2] = b[..., 2] - b[..., 0]
    out[..., 3] = b[..., 3] - b[..., 1]
    return out


def cxcywh_to_xyxy(boxes: NDArray[F]) -> NDArray[F]:
    b, out = boxes, boxes.copy()
    out[..., 0] = b[..., 0] - b[..., 2] / 2
    out[..., 1] = b[..., 1] - b[..., 3] / 2
    out[..., 2] = b[..., 0] + b[..., 2] / 2
    out[..., 3] = b[..., 1] + b[..., 3] / 2
    return out


def clip_boxes(boxes: NDArray[F], width: float, height: float) -> NDArray[F]:
    """xyxy boxes with x in [0, width] and y in [0, height]."""
    out = boxes.copy()
    out[..., 0::2] = np.clip(out[..., 0::2], 0, width)
    out[..., 1::2] = np.clip(out[..., 1::2], 0, height)
    return out


def pairwise_iou(a: FloatBoxes, b: FloatBoxes, dtype: type = np.float32) -> FloatBoxes:
    """IoU of every xyxy box of `a` with every box of `b`, `(len(a), len(b))`, computed in
    `dtype` (float32: nvinfer's clustering; float64: evaluation, trackers); 0 where the union
    is 0."""
    a_: FloatBoxes = a.astype(dtype, copy=False)
    b_: FloatBoxes = b.astype(dtype, copy=False)
    iw = np.minimum.outer(a_[:, 2], b_[:, 2]) - np.maximum.outer(a_[:, 0], b_[:, 0])
    ih = np.minimum.outer(a_[:, 3], b_[:, 3]) - np.maximum.outer(a_[:, 1], b_[:, 1])
    np.clip(iw, 0.0, None, out=iw)
    np.clip(ih, 0.0, None, out=ih)
    inter = iw * ih
    area_a = (a_[:, 2] - a_[:, 0]) * (a_[:, 3] - a_[:, 1])
    area_b = (b_[:, 2] - b_[:, 0]) * (b_[:, 3] - b_[:, 1])
    union = np.add.outer(area_a, area_b) - inter
    out: FloatBoxes = np.zeros_like(inter)
    np.divide(inter, union, out=out, where=union > 0)
    return out
