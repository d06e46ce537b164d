"""Optimal one-to-one matching of targets to detections by IoU (scipy's Hungarian solver)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from heron.core.boxes import FloatBoxes, pairwise_iou

_INFEASIBLE = 1e6


def match_iou(
    target_boxes: npt.NDArray[np.float64],
    target_classes: npt.NDArray[np.int64],
    det_boxes: FloatBoxes,
    det_classes: npt.NDArray[np.int64],
    min_iou: float,
    *,
    check_class: bool,
) -> list[tuple[int, int, float]]:
    """(target row, detection row, IoU) of the matching with the most total IoU, every pair at
    least `min_iou` (and of one class when `check_class`)."""
    from scipy.optimize import linear_sum_assignment  # scipy on first use: services start fast

    if len(target_boxes) == 0 or len(det_boxes) == 0:
        return []
    iou = pairwise_iou(target_boxes, det_boxes, np.float64)
    ok = iou >= max(min_iou, 1e-9)  # boxes that do not touch never match
    if check_class:
        ok &= target_classes[:, None] == det_classes[None, :]
    cost = np.where(ok, 1.0 - iou, _INFEASIBLE)
    rows, cols = linear_sum_assignment(cost)
    return [(int(r), int(c), float(iou[r, c])) for r, c in zip(rows, cols, strict=True) if ok[r, c]]
