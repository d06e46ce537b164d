"""evaluate() against torchmetrics' MeanAveragePrecision (pycocotools backend) on random cases.

The two differ only where their definitions differ, and the cases are built so that they agree:

- Interpolation. COCO samples the interpolated precision at fixed recall thresholds (101 by
  default, which is neither VOC formula). With `rec_thresholds` = the 11 VOC levels COCO's rule
  (precision at the first detection reaching recall >= t, made monotone) *is* VOC2007 SAMPLE.
  INTEGRATE is the integral of that step function; its steps sit at multiples of 1/n_gt, so
  sampling it at the midpoints of M equal cells, M a multiple of every class's n_gt, is exact.
- Matching. COCO gives a detection the best *unmatched* box, TAO/VOC the best box and a
  duplicate if it is taken. They coincide when a detection can pass the IoU threshold with at
  most one box, which holds when a class's boxes in an image do not overlap: here each box sits
  in its own tile.
- Classes without ground truth: COCO leaves them out of the mean, TAO counts them as 0; every
  case here has boxes of every class.
What is left is float rounding: the comparison tolerance is 1e-6.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from heron.evaluation.ap import APMode, EvaluationConfig, GroundTruth, evaluate
from heron.postprocess import Detections

pytest.importorskip("pycocotools", reason="torchmetrics' mAP needs pycocotools")
torch = pytest.importorskip("torch")
mean_ap = pytest.importorskip("torchmetrics.detection.mean_ap")

NAMES = ["Mask", "No-Mask"]
TILE_W, TILE_H = 240.0, 136.0  # a 4x4 tiling of 960x544


def _random_case(
    rng: np.random.Generator,
) -> tuple[list[Detections], list[GroundTruth]]:
    preds, gts = [], []
    for _ in range(int(rng.integers(3, 8))):
        gt_boxes: list[list[float]] = []
        det_boxes: list[list[float]] = []
        gt_ids, det_scores, det_ids = [], [], []
        for class_id in range(len(NAMES)):
            tiles = rng.choice(16, size=int(rng.integers(1, 5)), replace=False)
            for tile in tiles:
                x0, y0 = (tile % 4) * TILE_W, (tile // 4) * TILE_H
                w, h = rng.uniform(20, TILE_W - 10), rng.uniform(20, TILE_H - 10)
                x, y = x0 + rng.uniform(0, TILE_W - w), y0 + rng.uniform(0, TILE_H - h)
                gt_boxes.append([x, y, x + w, y + h])
                gt_ids.append(class_id)
                for _ in range(int(rng.choice([0, 1, 1, 1, 2]))):  # misses and duplicates
                    jitter = rng.normal(0, 0.18, 4) * [w, h, w, h]
                    box = np.array([x, y, x + w, y + h]) + jitter
                    box[2:] = np.maximum(box[2:], box[:2] + 1)
                    det_boxes.append(box.tolist())
                    det_scores.append(rng.uniform(0.05, 1.0))
                    det_ids.append(class_id)
            for _ in range(int(rng.integers(0, 3))):  # background false positives
                x, y = rng.uniform(0, 900), rng.uniform(0, 500)
                det_boxes.append([x, y, x + rng.uniform(10, 60), y + rng.uniform(10, 40)])
                det_scores.append(rng.uniform(0.05, 1.0))
                det_ids.append(class_id)
        gts.append(GroundTruth.from_arrays(np.reshape(gt_boxes, (-1, 4)), gt_ids))
        preds.append(Detections(np.reshape(det_boxes, (-1, 4)), det_scores, det_ids))
    return preds, gts


def _torchmetrics_ap(
    preds: list[Detections], gts: list[GroundTruth], rec_thresholds: list[float]
) -> dict[str, float]:
    metric = mean_ap.MeanAveragePrecision(
        box_format="xyxy",
        iou_type="bbox",
        iou_thresholds=[0.5],
        rec_thresholds=rec_thresholds,
        max_detection_thresholds=[1, 10, 100],  # cases have < 100 boxes per image
        class_metrics=True,
        backend="pycocotools",
    )
    metric.update(
        [
            {
                "boxes": torch.from_numpy(p.xyxy),
                "scores": torch.from_numpy(p.scores),
                "labels": torch.from_numpy(p.class_ids),
            }
            for p in preds
        ],
        [
            {"boxes": torch.from_numpy(g.boxes), "labels": torch.from_numpy(g.class_ids)}
            for g in gts
        ],
    )
    result = metric.compute()
    per_class = dict(zip(result["classes"].tolist(), result["map_per_class"].tolist(), strict=True))
    return {"map": float(result["map"]), **{NAMES[k]: v for k, v in per_class.items()}}


@pytest.mark.parametrize("mode", [APMode.SAMPLE, APMode.INTEGRATE])
def test_matches_torchmetrics_on_20_random_cases(mode: APMode) -> None:
    rng = np.random.default_rng(20261127)
    for case in range(20):
        preds, gts = _random_case(rng)
        report = evaluate(preds, gts, NAMES, EvaluationConfig.uniform(NAMES, 0.5, mode))
        if mode is APMode.SAMPLE:
            thresholds = np.linspace(0.0, 1.0, 11).tolist()
        else:
            counts = [c.num_ground_truth for c in report.classes]
            cells = math.lcm(*counts)
            thresholds = ((np.arange(cells) + 0.5) / cells).tolist()
        theirs = _torchmetrics_ap(preds, gts, thresholds)
        ours = {"map": report.mean_average_precision, **report.average_precisions}
        assert ours == pytest.approx(theirs, abs=1e-6), f"case {case}"
        assert 0.05 < ours["map"] < 0.999, f"case {case} is too easy to tell anything"
