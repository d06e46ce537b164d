"""Greedy matching of one class's detections to ground truth, TAO/VOC style.

Per image, detections in descending score take the ground-truth box they overlap most. At or
above the class's minimum overlap that is a true positive, unless the box was taken already
(a duplicate: false positive) or is "don't care" (outside the evaluation box sizes: the detection
is ignored, neither true nor false positive); below it, a false positive.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from heron.core.boxes import pairwise_iou
from heron.core.detections import FloatArray


@dataclass(frozen=True)
class ImageMatches:
    """Kept detections' scores and true-positive flags; `ignored` counts the dropped ones."""

    scores: FloatArray
    true_positive: NDArray[np.bool_]
    ignored: int = 0


def match_image(
    boxes: FloatArray,
    scores: FloatArray,
    gt_boxes: FloatArray,
    gt_care: NDArray[np.bool_],
    min_overlap: float,
) -> ImageMatches:
    """Match one image's detections of one class; ignored detections are left out."""
    order = np.argsort(-scores, kind="stable")
    if len(gt_boxes) == 0:
        return ImageMatches(scores[order], np.zeros(len(order), dtype=bool))
    overlaps = pairwise_iou(boxes[order], gt_boxes, np.float64)
    best = overlaps.argmax(axis=1)
    taken = np.zeros(len(gt_boxes), dtype=bool)
    keep = np.ones(len(order), dtype=bool)
    tp = np.zeros(len(order), dtype=bool)
    for i, j in enumerate(best):
        if overlaps[i, j] < min_overlap:
            continue
        if not gt_care[j]:
            keep[i] = False
        elif not taken[j]:
            taken[j] = tp[i] = True
    return ImageMatches(scores[order][keep], tp[keep], int((~keep).sum()))


def merge_images(per_image: list[ImageMatches]) -> ImageMatches:
    """All images' matches in descending score (ties: image order, then score order)."""
    if not per_image:
        return ImageMatches(np.zeros(0, np.float32), np.zeros(0, dtype=bool))
    scores = np.concatenate([m.scores for m in per_image])
    tp = np.concatenate([m.true_positive for m in per_image])
    order = np.argsort(-scores, kind="stable")
    return ImageMatches(scores[order], tp[order], sum(m.ignored for m in per_image))
