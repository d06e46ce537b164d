"""Small hand-made scenes for the tracker tests: boxes that move by a known amount."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from heron.tracker import Detections, Frame, Tracked, TrackerKind, TrackerParams
from heron.tracker.core import TargetTracker
from heron.tracker.factory import TrackerSpec, build_tracker

W, H = 320, 192
KINDS = list(TrackerKind)


def params(**targets: float) -> TrackerParams:
    """Defaults with TargetManagement overrides (DeepStream key names)."""
    return TrackerParams.model_validate({"TargetManagement": {"probationAge": 0, **targets}})


def tracker(kind: TrackerKind, p: TrackerParams | None = None) -> TargetTracker:
    return build_tracker(TrackerSpec(kind, p if p is not None else params(), W, H))


def box(x: float, y: float, w: float = 40, h: float = 50) -> list[float]:
    return [x, y, x + w, y + h]


def dets(*boxes: list[float], scores: list[float] | None = None) -> Detections:
    """Class-0 detections, of score 1 unless given."""
    n = len(boxes)
    return Detections(np.reshape(boxes, (-1, 4)), scores or np.ones(n), np.zeros(n, np.int64))


_BG = np.random.default_rng(7).integers(0, 256, (H // 16 + 1, W // 16 + 1, 3), dtype=np.uint8)
_PATCHES = [np.random.default_rng(s).integers(0, 256, (10, 8, 3), dtype=np.uint8) for s in range(4)]


def render(*boxes: list[float]) -> Frame:
    """A textured background with textured patches at `boxes` (40 x 50 each)."""
    import cv2

    image = np.asarray(cv2.resize(_BG, (W, H), interpolation=cv2.INTER_CUBIC), np.uint8)
    for k, (x1, y1, _, _) in enumerate(boxes):
        x, y = round(x1), round(y1)
        patch = cv2.resize(_PATCHES[k], (40, 50), interpolation=cv2.INTER_CUBIC)
        image[y : y + 50, x : x + 40] = patch
    return Frame(image)


def ids(tracks: list[Tracked]) -> list[int]:
    return [t.track_id for t in tracks]


def as_array(b: list[float]) -> npt.NDArray[np.float64]:
    return np.array(b, dtype=np.float64)
