"""KLT tracker (DeepStream's libnvds_mot_klt.so): pyramidal Lucas-Kanade optical flow.

Each frame, corners (`cv2.goodFeaturesToTrack`) are found inside every target's box in the
previous frame and followed into this one (`cv2.calcOpticalFlowPyrLK`), checked forwards and
backwards; the box moves by the median flow and scales by the median change of the distances
between points. Its confidence is the share of points that survived the checks. Without the
previous frame's pixels the targets stay put for that frame (IOU behaviour).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from heron.core.boxes import cxcywh_to_xyxy, xyxy_to_cxcywh
from heron.core.config.tracker_params import TrackerParams
from heron.tracker.base import Frame
from heron.tracker.core import IdSource, Target, TargetTracker

_FB_ERROR_PX = 1.5  # forward-backward disagreement beyond this drops a point
_MIN_POINTS = 3

Points = npt.NDArray[np.float32]


class KltTracker(TargetTracker):
    def __init__(self, params: TrackerParams, ids: IdSource | None = None) -> None:
        super().__init__(params, ids)
        self._prev: npt.NDArray[np.uint8] | None = None  # previous frame, grey, tracker-sized
        self._prev_scale: tuple[float, float] = (1.0, 1.0)

    def reset(self) -> None:
        super().reset()
        self._prev = None

    def _predict(self, frame: Frame | None) -> None:
        import cv2

        if frame is None:
            self._prev = None  # the next frame cannot be compared with this one
            return
        grey = np.asarray(cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
        prev, prev_scale = self._prev, self._prev_scale
        self._prev, self._prev_scale = grey, (frame.sx, frame.sy)
        if prev is None or prev.shape != grey.shape or prev_scale != self._prev_scale:
            return  # nothing comparable to follow from
        boxes = [frame.to_image(t.box[None])[0] for t in self.targets]
        corners = [self._corners(prev, b) for b in boxes]
        found = [p for p in corners if p is not None]
        if not found:
            for t in self.targets:
                t.confidence = 0.0
            return
        # One flow call for every target's points: each call builds both images' pyramids.
        points = np.concatenate(found)
        moved, good = self._flow(prev, grey, points)
        start = 0
        for t, box, p in zip(self.targets, boxes, corners, strict=True):
            if p is None:
                t.confidence = 0.0
                continue
            end = start + len(p)
            self._move(
                t,
                box,
                old=points[start:end, 0],
                new=moved[start:end, 0],
                good=good[start:end],
                frame=frame,
            )
            start = end

    def _flow(
        self, prev: npt.NDArray[np.uint8], grey: npt.NDArray[np.uint8], points: Points
    ) -> tuple[Points, npt.NDArray[np.bool_]]:
        """Points followed into `grey`, and which ones passed the forward-backward check."""
        import cv2

        h = self.params.heron
        lk: dict[str, Any] = {
            "winSize": (h.klt_win_size, h.klt_win_size),
            "maxLevel": h.klt_pyramid_levels,
        }
        forward, ok, _ = cv2.calcOpticalFlowPyrLK(prev, grey, points, points.copy(), **lk)
        moved: Points = np.asarray(forward, np.float32)
        back, ok_back, _ = cv2.calcOpticalFlowPyrLK(grey, prev, moved, moved.copy(), **lk)
        fb = np.linalg.norm(points - back, axis=2).ravel()
        good: npt.NDArray[np.bool_] = (
            (ok.ravel() == 1) & (ok_back.ravel() == 1) & (fb < _FB_ERROR_PX)
        )
        return moved, good

    def _move(
        self,
        t: Target,
        box: npt.NDArray[np.float64],
        *,
        old: Points,
        new: Points,
        good: npt.NDArray[np.bool_],
        frame: Frame,
    ) -> None:
        t.confidence = float(good.mean())
        if good.sum() < _MIN_POINTS:
            return
        old, new = old[good], new[good]
        moved = xyxy_to_cxcywh(box)
        moved[:2] += np.median(new - old, axis=0)
        moved[2:] *= _median_scale(old, new)
        t.box = frame.to_source(cxcywh_to_xyxy(moved)[None])[0]

    def _corners(
        self, grey: npt.NDArray[np.uint8], box: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float32] | None:
        import cv2

        h, w = grey.shape
        x1, y1 = int(max(box[0], 0)), int(max(box[1], 0))
        x2, y2 = int(min(np.ceil(box[2]), w)), int(min(np.ceil(box[3]), h))
        if x2 - x1 < 4 or y2 - y1 < 4:
            return None
        found = cv2.goodFeaturesToTrack(
            grey[y1:y2, x1:x2], self.params.heron.klt_max_corners, 0.01, 2, blockSize=3
        )
        if found is None or len(found) < _MIN_POINTS:
            return None
        points: npt.NDArray[np.float32] = np.asarray(found, np.float32) + np.array(
            [x1, y1], np.float32
        )
        return points


def _median_scale(old: npt.NDArray[np.float32], new: npt.NDArray[np.float32]) -> float:
    """Median ratio of point-pair distances after/before: the box's change of size."""
    i, j = np.triu_indices(len(old), k=1)
    before = np.linalg.norm(old[i] - old[j], axis=1)
    after = np.linalg.norm(new[i] - new[j], axis=1)
    keep = before > 1.0
    if not keep.any():
        return 1.0
    return float(np.clip(np.median(after[keep] / before[keep]), 0.8, 1.25))
