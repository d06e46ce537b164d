"""ByteTrack-class tracker: Kalman motion, Hungarian matching, high then low score association.

After the Kalman prediction, every target is matched with the high-score detections
(score >= tentativeDetectorConfidence, IoU >= minMatchingScore4Iou); targets seen on the last
frame that are still unmatched then get a second chance with the low-score detections
(minDetectorConfidence <= score < tentativeDetectorConfidence, IoU >=
minMatchingScore4TentativeIou), which keeps ids through partial occlusion where the detector's
confidence dips. Only high-score detections start targets. Ids, probation and shadow tracking
are the shared life cycle's (heron.tracker.core).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from heron.core.detections import Detections
from heron.tracker.associate import match_iou
from heron.tracker.base import Frame, detection_box, detection_scores
from heron.tracker.core import Target, TargetTracker
from heron.tracker.kalman import KalmanBox


class ByteTracker(TargetTracker):
    def _predict(self, frame: Frame | None) -> None:
        for t in self.targets:
            t.box = t.state.predict()

    def _associate(
        self, detections: Detections, usable: npt.NDArray[np.intp]
    ) -> list[tuple[int, int, float]]:
        a = self.params.associator
        high_mask = detection_scores(detections)[usable] >= a.tentative_detector_confidence
        high, low = usable[high_mask], usable[~high_mask]
        boxes, classes = self._target_arrays()
        everyone = list(range(len(boxes)))
        first = self._match(
            boxes, classes, detections, high, targets=everyone, min_iou=a.min_matching_score_4_iou
        )
        taken = {t for t, _, _ in first}
        # Second chance only for targets seen last frame: a lost one would grab clutter.
        rest = [i for i, t in enumerate(self.targets) if i not in taken and t.misses == 0]
        second = self._match(
            boxes,
            classes,
            detections,
            low,
            targets=rest,
            min_iou=a.min_matching_score_4_tentative_iou,
        )
        return [(t, d, float(detections.scores[d])) for t, d, _ in first + second]

    def _match(
        self,
        boxes: npt.NDArray[np.float64],
        classes: npt.NDArray[np.int64],
        detections: Detections,
        dets: npt.NDArray[np.intp],
        *,
        targets: list[int],
        min_iou: float,
    ) -> list[tuple[int, int, float]]:
        rows = np.array(targets, np.intp)
        pairs = match_iou(
            boxes[rows],
            classes[rows],
            detections.xyxy[dets],
            detections.class_ids[dets],
            min_iou,
            check_class=self.params.associator.check_class_match,
        )
        return [(int(rows[t]), int(dets[d]), iou) for t, d, iou in pairs]

    def _on_match(
        self, target: Target, detections: Detections, index: int, frame: Frame | None
    ) -> None:
        target.state.update(detection_box(detections, index))
        target.box = target.state.box()  # the filtered box: steadier than the raw detection

    def _on_start(self, target: Target, frame: Frame | None) -> None:
        target.state = KalmanBox(target.box, self.params.estimator)

    def _can_start(self, detections: Detections, index: int) -> bool:
        score = detection_scores(detections)[index]
        return bool(score >= self.params.associator.tentative_detector_confidence)
