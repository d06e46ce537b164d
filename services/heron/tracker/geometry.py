"""Box arithmetic shared by the trackers (x1, y1, x2, y2 boxes, N x 4 arrays)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Boxes = npt.NDArray[np.float64]


def iou_matrix(a: Boxes, b: Boxes) -> Boxes:
    """Intersection over union of every box of `a` (N x 4) with every box of `b` (M x 4)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    out: Boxes = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
    return out


def xyxy_to_xywh(boxes: Boxes) -> Boxes:
    out = boxes.copy()
    out[..., 2:] -= out[..., :2]
    return out


def xywh_to_xyxy(boxes: Boxes) -> Boxes:
    out = boxes.copy()
    out[..., 2:] += out[..., :2]
    return out


def clip_boxes(boxes: Boxes, width: float, height: float) -> Boxes:
    out = boxes.copy()
    out[..., 0::2] = np.clip(out[..., 0::2], 0, width)
    out[..., 1::2] = np.clip(out[..., 1::2], 0, height)
    return out
