"""CLEAR-MOT and identity metrics of a tracker on a `Scene`, computed by py-motmetrics.

motmetrics is an optional dependency (`pip install motmetrics`), imported here only. Its own
`distances.iou_matrix` uses `np.asfarray`, gone in NumPy 2, so the distances are computed with
heron.core.boxes.pairwise_iou instead (same definition: 1 - IoU, no match below IoU 0.5).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from heron.core.boxes import pairwise_iou
from heron.tracker.base import Frame, Tracker
from heron.tracker.synthetic import Scene

MATCH_IOU = 0.5


@dataclass(frozen=True)
class MotScore:
    mota: float
    idf1: float
    id_switches: int
    false_positives: int
    misses: int
    frames: int
    update_seconds: float  # time spent inside tracker.update, all frames


def evaluate(
    tracker: Tracker,
    scene: Scene,
    *,
    pixels: bool,
    size: tuple[int, int] | None = None,
    interval: int = 0,
) -> MotScore:
    """Run `tracker` over the scene (with frames scaled to `size` when `pixels`) and score it.

    `interval` is nvinfer's: the detector runs on one frame in `interval + 1` and the tracker
    carries the objects over the others; every frame is scored."""
    import motmetrics as mm  # type: ignore[import-untyped,import-not-found,unused-ignore]

    acc = mm.MOTAccumulator(auto_id=True)
    spent = 0.0
    for f, (truth, dets) in enumerate(zip(scene.truth, scene.detections, strict=True)):
        frame = _frame(scene, f, size) if pixels else None
        start = time.perf_counter()
        tracks = tracker.update(dets if f % (interval + 1) == 0 else None, frame)
        spent += time.perf_counter() - start
        boxes = np.array([t.box for t in tracks]).reshape(-1, 4)
        distance = 1.0 - pairwise_iou(truth.boxes, boxes, np.float64)
        distance[distance > 1.0 - MATCH_IOU] = np.nan
        acc.update(list(truth.ids), [t.track_id for t in tracks], distance)
    summary = mm.metrics.create().compute(
        acc,
        metrics=["mota", "idf1", "num_switches", "num_false_positives", "num_misses"],
        name="scene",
    )
    row = summary.iloc[0]
    return MotScore(
        mota=float(row["mota"]),
        idf1=float(row["idf1"]),
        id_switches=int(row["num_switches"]),
        false_positives=int(row["num_false_positives"]),
        misses=int(row["num_misses"]),
        frames=len(scene.truth),
        update_seconds=spent,
    )


def _frame(scene: Scene, index: int, size: tuple[int, int] | None) -> Frame:
    import cv2

    image = scene.frame(index)
    if size is None or size == (scene.spec.width, scene.spec.height):
        return Frame(image)
    scaled = np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), np.uint8)
    return Frame(scaled, size[0] / scene.spec.width, size[1] / scene.spec.height)
