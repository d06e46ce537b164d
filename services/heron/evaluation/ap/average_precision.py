"""Precision/recall from matched detections, and AP by VOC2007 sampling or VOC2010+ integration.

`precision` and `recall` are cumulative over detections sorted by descending score.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Float64Array = NDArray[np.float64]


def precision_recall(
    true_positive: NDArray[np.bool_], num_ground_truth: int
) -> tuple[Float64Array, Float64Array]:
    """Cumulative precision and recall; recall is all zeros when there is no ground truth."""
    tp = np.cumsum(true_positive, dtype=np.float64)
    fp = np.cumsum(~true_positive, dtype=np.float64)
    precision = tp / np.maximum(tp + fp, 1.0)
    recall = tp / num_ground_truth if num_ground_truth > 0 else np.zeros_like(tp)
    return precision, recall


def interpolated_precision(
    precision: Float64Array, recall: Float64Array, at: Float64Array
) -> Float64Array:
    """For each recall level t: the highest precision reached at recall >= t (0 if none)."""
    if precision.size == 0:
        return np.zeros_like(at)
    running_max = np.maximum.accumulate(precision[::-1])[::-1]
    first = np.searchsorted(recall, at, side="left")  # recall is non-decreasing
    out = np.zeros_like(at)
    inside = first < recall.size
    out[inside] = running_max[first[inside]]
    return out


def ap_sample(precision: Float64Array, recall: Float64Array, num_points: int = 11) -> float:
    """VOC2007: mean interpolated precision at `num_points` recall levels 0, 0.1, …, 1."""
    levels = np.linspace(0.0, 1.0, num_points)
    return float(interpolated_precision(precision, recall, levels).mean())


def ap_integrate(precision: Float64Array, recall: Float64Array) -> float:
    """VOC2010+: the area under the interpolated precision/recall step curve."""
    if precision.size == 0:
        return 0.0
    levels = np.concatenate([[0.0], recall])
    steps = np.diff(levels)
    # Over (r[i-1], r[i]] the interpolated precision is the best precision at recall >= r[i].
    running_max = np.maximum.accumulate(precision[::-1])[::-1]
    return float(np.sum(steps * running_max))
