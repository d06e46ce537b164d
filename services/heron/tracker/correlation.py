"""Correlation-filter tracker in the place of DeepStream's NvDCF (libnvds_nvdcf.so).

Every target carries an OpenCV correlation-filter tracker (`cv2.TrackerKCF`, or
`cv2.TrackerCSRT`, the discriminative correlation filter with channel and spatial reliability
that NvDCF is modelled on), run on frames scaled to tracker-width x tracker-height. It moves
the target on every frame, detector or not. A matched detection that agrees with the filter
(IoU >= 0.8) keeps it; any other rebuilds it on the detection's box, so the filter never
drifts far. Its confidence is 1 while the filter finds the target and 0 once it loses it.
Without pixels a frame is matched by overlap only (IOU behaviour) and filters whose frame went
missing are rebuilt at their next match.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from heron.core.boxes import ltwh_to_xyxy, pairwise_iou
from heron.core.config.tracker_params import TrackerParams
from heron.core.detections import Detections
from heron.tracker.base import Frame, detection_box
from heron.tracker.core import IdSource, Target, TargetTracker

_MIN_SIDE = 4  # pixels; OpenCV's filters fail on smaller boxes
_KEEP_IOU = 0.8  # a matched detection this close to the filter's box keeps the filter


@dataclass
class _Filter:
    filter: Any  # cv2.TrackerKCF / cv2.TrackerCSRT
    box: npt.NDArray[np.float64]  # where it last put the target (source pixels)
    holding: bool = True  # it found the target on the last frame


def create_filter(kind: Literal["csrt", "kcf"]) -> Any:
    import cv2

    return cv2.TrackerCSRT.create() if kind == "csrt" else cv2.TrackerKCF.create()


class CorrelationTracker(TargetTracker):
    def __init__(self, params: TrackerParams, ids: IdSource | None = None) -> None:
        super().__init__(params, ids)
        self.kind = params.heron.correlation_filter

    def _predict(self, frame: Frame | None) -> None:
        if frame is None:
            for t in self.targets:
                t.state = None  # its filter skipped a frame: rebuild it at the next match
            return
        for t in self.targets:
            if t.state is None:
                continue
            found, rect = t.state.filter.update(frame.image)  # OpenCV: left, top, width, height
            t.confidence = 1.0 if found else 0.0
            t.state.holding = bool(found)
            if found:
                box = ltwh_to_xyxy(np.array([rect], np.float64))
                t.box = frame.to_source(box)[0]
                t.state.box = t.box.copy()

    def _on_match(
        self, target: Target, detections: Detections, index: int, frame: Frame | None
    ) -> None:
        state = target.state
        if isinstance(state, _Filter) and state.holding:
            found = detection_box(detections, index)
            agree = pairwise_iou(state.box[None], found[None], np.float64)[0, 0]
            if agree >= _KEEP_IOU:
                return  # the filter is on the detection: rebuilding it would cost for nothing
        self._on_start(target, frame)

    def _on_start(self, target: Target, frame: Frame | None) -> None:
        target.state = None
        if frame is None:
            return
        h, w = frame.image.shape[:2]
        x1, y1, x2, y2 = frame.to_image(target.box[None])[0]
        x1, y1 = max(0, round(x1)), max(0, round(y1))
        x2, y2 = min(w, round(x2)), min(h, round(y2))
        if x2 - x1 < _MIN_SIDE or y2 - y1 < _MIN_SIDE:
            return  # too small to correlate at tracker size: overlap only
        tracker = create_filter(self.kind)
        tracker.init(frame.image, (x1, y1, x2 - x1, y2 - y1))
        target.state = _Filter(tracker, target.box.copy())
