"""`evaluate`: per-class AP and mAP of predictions against ground truth, TAO detectnet_v2 style."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from heron.core.detections import Detections, FloatArray
from heron.evaluation.ap.average_precision import ap_integrate, ap_sample, precision_recall
from heron.evaluation.ap.config import APMode, EvaluationBoxConfig, EvaluationConfig
from heron.evaluation.ap.ground_truth import GroundTruth
from heron.evaluation.ap.matching import ImageMatches, match_image, merge_images
from heron.evaluation.ap.report import ClassReport, EvalReport


def in_box_range(boxes: FloatArray, limits: EvaluationBoxConfig) -> NDArray[np.bool_]:
    """Boxes whose width and height lie inside the limits (bounds included, as TAO)."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    ok = (h >= limits.minimum_height) & (w >= limits.minimum_width)
    if limits.maximum_height is not None:
        ok &= h <= limits.maximum_height
    if limits.maximum_width is not None:
        ok &= w <= limits.maximum_width
    return ok


def _check_inputs(
    predictions: Sequence[Detections], ground_truth: Sequence[GroundTruth], num_classes: int
) -> None:
    if len(predictions) != len(ground_truth):
        raise ValueError(
            f"predictions and ground_truth must have one entry per image, but got "
            f"{len(predictions)} predictions and {len(ground_truth)} ground truths"
        )
    if num_classes == 0:
        raise ValueError("class_names must name at least one class, but got none")
    for i, (pred, gt) in enumerate(zip(predictions, ground_truth, strict=True)):
        for what, ids in (("predictions", pred.class_ids), ("ground_truth", gt.class_ids)):
            if ids.size and ids.max() >= num_classes:
                raise ValueError(
                    f"{what}[{i}] has class id {int(ids.max())}, but class_names has only "
                    f"{num_classes} classes (ids 0..{num_classes - 1})"
                )


def evaluate_class(
    class_id: int,
    name: str,
    predictions: Sequence[Detections],
    ground_truth: Sequence[GroundTruth],
    config: EvaluationConfig,
) -> ClassReport:
    """AP of one class over all images."""
    min_overlap = config.overlap_for(name)
    limits = config.box_config_for(name)
    per_image: list[ImageMatches] = []
    num_gt = num_dont_care = 0
    for pred, gt in zip(predictions, ground_truth, strict=True):
        det = pred.of_class(class_id)
        det = det[in_box_range(det.xyxy, limits)]
        gt_boxes = gt.boxes[gt.class_ids == class_id]
        care = in_box_range(gt_boxes, limits)
        num_gt += int(care.sum())
        num_dont_care += int((~care).sum())
        per_image.append(match_image(det.xyxy, det.scores, gt_boxes, care, min_overlap))
    matches = merge_images(per_image)
    precision, recall = precision_recall(matches.true_positive, num_gt)
    if num_gt == 0:
        ap = 0.0  # TAO: recall is undefined and the AP reported as 0
    elif config.average_precision_mode is APMode.SAMPLE:
        ap = ap_sample(precision, recall, config.num_recall_points)
    else:
        ap = ap_integrate(precision, recall)
    tp = int(matches.true_positive.sum())
    return ClassReport(
        name=name,
        average_precision=ap,
        min_overlap=min_overlap,
        num_ground_truth=num_gt,
        num_dont_care=num_dont_care,
        num_detections=len(matches.scores) + matches.ignored,
        num_ignored=matches.ignored,
        true_positives=tp,
        false_positives=len(matches.true_positive) - tp,
        precision=precision.tolist(),
        recall=recall.tolist(),
        scores=matches.scores.astype(float).tolist(),
    )


def evaluate(
    predictions: Sequence[Detections],
    ground_truth: Sequence[GroundTruth],
    class_names: Sequence[str],
    config: EvaluationConfig,
) -> EvalReport:
    """Per-class AP and mAP; `predictions[i]` and `ground_truth[i]` describe the same image."""
    _check_inputs(predictions, ground_truth, len(class_names))
    classes = [
        evaluate_class(k, name, predictions, ground_truth, config)
        for k, name in enumerate(class_names)
    ]
    return EvalReport(
        classes=classes,
        mean_average_precision=float(np.mean([c.average_precision for c in classes])),
        num_images=len(predictions),
        config=config,
    )
