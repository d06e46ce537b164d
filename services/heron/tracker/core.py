"""Target life cycle shared by every tracker: probation, shadow tracking, ids.

`TargetTracker.update` runs one frame: the subclass moves its targets (`_predict`: nothing for
IOU, optical flow for KLT, a correlation filter, a Kalman filter), targets are matched to
detections (`_associate`), matched targets take the detection's box, unmatched ones count a
miss, and detections that match nothing start targets. DeepStream's NvMOT semantics:

- a target is reported once it has matched more than `probationAge` frames; a target on
  probation that misses `earlyTerminationAge` frames ends;
- a confirmed target that misses a frame is shadow-tracked (not reported) and ends after
  `maxShadowTrackingAge` misses in a row;
- a detection overlapping a target by more than `minIouDiff4NewTarget` starts no target;
- on frames the detector skipped (detections None) targets are carried forward, no miss is
  counted, and the visible confirmed ones are reported with the tracker's own box.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from heron.core.boxes import pairwise_iou
from heron.core.config.tracker_params import TrackerParams
from heron.core.detections import Detections
from heron.tracker.associate import match_iou
from heron.tracker.base import Frame, Tracked, detection_box, detection_scores


@dataclass
class Target:
    box: npt.NDArray[np.float64]
    class_id: int
    confidence: float
    hits: int = 1
    misses: int = 0
    track_id: int = 0  # 0 while on probation
    detection: int | None = None  # index of this frame's matched detection
    state: Any = field(default=None, repr=False)  # the subclass's per-target state


class IdSource:
    """Track ids of one stream: 1, 2, 3, ... (0 means "not tracked" in FrameMetadata)."""

    def __init__(self) -> None:
        self.next_id = 1

    def take(self) -> int:
        value = self.next_id
        self.next_id += 1
        return value

    def reset(self) -> None:
        self.next_id = 1


class TargetTracker:
    """The shared update; subclasses override the hooks below."""

    def __init__(self, params: TrackerParams, ids: IdSource | None = None) -> None:
        self.params = params
        self.ids = ids if ids is not None else IdSource()
        self.targets: list[Target] = []

    # --- the interface --------------------------------------------------------------------

    def update(self, detections: Detections | None, frame: Frame | None) -> list[Tracked]:
        self._predict(frame)
        if detections is None:
            return self._carried()
        for t in self.targets:
            t.detection = None
        usable = np.flatnonzero(
            detection_scores(detections) >= self.params.base.min_detector_confidence
        )
        matched_dets: set[int] = set()
        for ti, di, confidence in self._associate(detections, usable):
            self._take(self.targets[ti], detections, di, confidence, frame)
            matched_dets.add(di)
        self._miss([t for t in self.targets if t.detection is None])
        new = [
            int(d)
            for d in usable
            if int(d) not in matched_dets and self._can_start(detections, int(d))
        ]
        self._start(detections, new, frame)
        return [
            Tracked(t.track_id, t.box.copy(), t.confidence, t.class_id, t.detection)
            for t in self.targets
            if t.track_id and t.detection is not None
        ]

    def reset(self) -> None:
        self.targets.clear()
        self.ids.reset()

    # --- hooks ----------------------------------------------------------------------------

    def _predict(self, frame: Frame | None) -> None:
        """Move every target's box to where it should be in `frame`."""

    def _associate(
        self, detections: Detections, usable: npt.NDArray[np.intp]
    ) -> list[tuple[int, int, float]]:
        """(target index, detection index, confidence) pairs; default: best IoU matching."""
        boxes, classes = self._target_arrays()
        pairs = match_iou(
            boxes,
            classes,
            detections.xyxy[usable],
            detections.class_ids[usable],
            self.params.associator.min_matching_score_4_iou,
            check_class=self.params.associator.check_class_match,
        )
        return [(t, int(usable[d]), iou) for t, d, iou in pairs]

    def _on_match(
        self, target: Target, detections: Detections, index: int, frame: Frame | None
    ) -> None:
        """A target took detection `index`: refresh the subclass's state."""

    def _on_start(self, target: Target, frame: Frame | None) -> None:
        """A new target: build the subclass's state."""

    def _can_start(self, detections: Detections, index: int) -> bool:
        return True

    # --- the life cycle -------------------------------------------------------------------

    def _target_arrays(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        if not self.targets:
            return np.zeros((0, 4)), np.zeros(0, np.int64)
        boxes = np.stack([t.box for t in self.targets])
        return boxes, np.array([t.class_id for t in self.targets], np.int64)

    def _take(
        self, t: Target, detections: Detections, di: int, confidence: float, frame: Frame | None
    ) -> None:
        t.box = detection_box(detections, di)
        t.detection = di
        t.confidence = confidence
        t.hits += 1
        t.misses = 0
        self._on_match(t, detections, di, frame)
        if not t.track_id and t.hits > self.params.targets.probation_age:
            t.track_id = self.ids.take()

    def _miss(self, missed: list[Target]) -> None:
        limits = self.params.targets
        gone: set[int] = set()
        for t in missed:
            t.misses += 1
            if t.track_id:  # confirmed: shadow-tracked up to its age
                ended = t.misses > limits.max_shadow_tracking_age
            else:  # on probation: a few misses end it
                ended = t.misses >= limits.early_termination_age
            if ended:
                gone.add(id(t))
        self.targets = [t for t in self.targets if id(t) not in gone]

    def _start(self, detections: Detections, new: list[int], frame: Frame | None) -> None:
        limits = self.params.targets
        for di in new:
            if len(self.targets) >= limits.max_targets_per_stream:
                return
            box = detection_box(detections, di)
            boxes, _ = self._target_arrays()
            overlap = pairwise_iou(box[None], boxes, np.float64)
            if len(boxes) and overlap.max() > limits.min_iou_diff_4_new_target:
                continue  # a duplicate of a target that already covers it
            t = Target(box, int(detections.class_ids[di]), float(detections.scores[di]))
            t.detection = di
            if limits.probation_age == 0:
                t.track_id = self.ids.take()
            self._on_start(t, frame)
            self.targets.append(t)

    def _carried(self) -> list[Tracked]:
        floor = self.params.targets.min_tracker_confidence
        return [
            Tracked(t.track_id, t.box.copy(), t.confidence, t.class_id, None)
            for t in self.targets
            if t.track_id and t.misses == 0 and t.confidence >= floor
        ]
