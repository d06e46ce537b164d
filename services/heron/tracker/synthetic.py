"""A generated tracking scene with ground truth: textured boxes that move, cross, hide and go.

Used by the quality tests and bench/tracker.py. Objects are textured rectangles over a textured
background (so optical flow and correlation filters have something to follow); they move at
constant velocity with small jitter, bounce off the edges, pass in front of each other (the
nearer one hides the farther), enter late and leave early. The simulated detector misses
objects that are mostly hidden or at random, lowers its score for partly hidden ones, adds
box noise and a few false positives.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from heron.core.boxes import clip_boxes
from heron.core.detections import Detections
from heron.tracker.base import Image


@dataclass(frozen=True)
class SceneSpec:
    width: int = 640
    height: int = 384
    frames: int = 120
    objects: int = 8
    crossing_pairs: int = 2  # pairs set on collision courses, one passing in front
    miss_rate: float = 0.05  # chance a visible object goes undetected
    box_noise_px: float = 1.5
    false_positive_rate: float = 0.1  # false detections per frame (Poisson mean)
    seed: int = 0


@dataclass(frozen=True)
class GroundTruth:
    ids: npt.NDArray[np.int64]
    boxes: npt.NDArray[np.float64]


@dataclass
class Scene:
    spec: SceneSpec
    truth: list[GroundTruth] = field(default_factory=list)
    detections: list[Detections] = field(default_factory=list)
    _background: Image = field(default_factory=lambda: np.zeros((1, 1, 3), np.uint8))
    _textures: list[Image] = field(default_factory=list)
    _tracks: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0, 4)))
    _alive: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros((0, 0), bool))

    def frame(self, index: int) -> Image:
        """The rendered frame: farther objects (higher index) first, nearer over them."""
        image = self._background.copy()
        for k in reversed(range(self.spec.objects)):
            if not self._alive[index, k]:
                continue
            x1, y1, x2, y2 = np.round(self._tracks[index, k]).astype(int)
            w, h = x2 - x1, y2 - y1
            if w < 1 or h < 1:
                continue
            patch = self._textures[k][:h, :w]
            image[y1:y2, x1:x2] = patch
        return image


def _texture(rng: np.random.Generator, h: int, w: int, *, scale: int) -> Image:
    import cv2

    small = rng.integers(0, 256, (max(h // scale, 2), max(w // scale, 2), 3), dtype=np.uint8)
    return np.asarray(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), np.uint8)


def make_scene(spec: SceneSpec = SceneSpec()) -> Scene:
    rng = np.random.default_rng(spec.seed)
    n, t = spec.objects, spec.frames
    sizes = rng.uniform([30, 40], [70, 90], (n, 2))  # w, h
    tracks = np.zeros((t, n, 4))
    alive = np.zeros((t, n), bool)
    for k in range(n):
        start, end = _lifetime(rng, t, k, spec)
        pos, vel = _motion(rng, k, sizes[k], spec)
        for f in range(start, end):
            pos, vel = _step(rng, pos, vel, sizes[k], spec)
            tracks[f, k] = [*pos, *(pos + sizes[k])]
            alive[f, k] = True
    scene = Scene(spec)
    scene._background = _texture(rng, spec.height, spec.width, scale=24)
    scene._textures = [_texture(rng, 100, 80, scale=5) for _ in range(n)]
    scene._tracks, scene._alive = tracks, alive
    for f in range(t):
        truth, dets = _observe(rng, tracks[f], alive[f], spec)
        scene.truth.append(truth)
        scene.detections.append(dets)
    return scene


def _lifetime(rng: np.random.Generator, t: int, k: int, spec: SceneSpec) -> tuple[int, int]:
    if k < 2 * spec.crossing_pairs:
        return 0, t
    start = int(rng.integers(0, t // 2))
    return start, int(rng.integers(min(start + t // 3, t), t + 1))


def _motion(
    rng: np.random.Generator, k: int, size: npt.NDArray[np.float64], spec: SceneSpec
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    if k < 2 * spec.crossing_pairs:
        # Pair members start at opposite sides on one row and run into each other.
        pair, side = divmod(k, 2)
        y = spec.height * (0.25 + 0.4 * pair) + rng.uniform(-5, 5)
        x = 20.0 if side == 0 else spec.width - 20.0 - size[0]
        speed = rng.uniform(3.0, 5.0)
        return np.array([x, y]), np.array([speed if side == 0 else -speed, rng.uniform(-0.3, 0.3)])
    pos = rng.uniform([0, 0], [spec.width - size[0], spec.height - size[1]])
    return pos, rng.uniform(-4, 4, 2)


def _step(
    rng: np.random.Generator,
    pos: npt.NDArray[np.float64],
    vel: npt.NDArray[np.float64],
    size: npt.NDArray[np.float64],
    spec: SceneSpec,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    vel = vel + rng.normal(0, 0.1, 2)
    pos = pos + vel
    limit = np.array([spec.width, spec.height]) - size
    for axis in (0, 1):
        if not 0 <= pos[axis] <= limit[axis]:
            vel[axis] = -vel[axis]
            pos[axis] = np.clip(pos[axis], 0, limit[axis])
    return pos, vel


def _visibility(boxes: npt.NDArray[np.float64], alive: npt.NDArray[np.bool_]) -> list[float]:
    """Share of each object not hidden by nearer ones (lower index = nearer)."""
    out = []
    for k, box in enumerate(boxes):
        if not alive[k]:
            out.append(0.0)
            continue
        x1, y1, x2, y2 = box.astype(int)
        mask = np.ones((max(y2 - y1, 1), max(x2 - x1, 1)), bool)
        for j in range(k):
            if alive[j]:
                a1, b1, a2, b2 = boxes[j].astype(int)
                mask[max(b1 - y1, 0) : max(b2 - y1, 0), max(a1 - x1, 0) : max(a2 - x1, 0)] = False
        out.append(float(mask.mean()))
    return out


def _observe(
    rng: np.random.Generator,
    boxes: npt.NDArray[np.float64],
    alive: npt.NDArray[np.bool_],
    spec: SceneSpec,
) -> tuple[GroundTruth, Detections]:
    vis = _visibility(boxes, alive)
    seen = [k for k in range(len(boxes)) if vis[k] >= 0.5]
    truth = GroundTruth(np.array(seen, np.int64) + 1, boxes[seen].reshape(-1, 4))
    det_boxes, scores = [], []
    for k in seen:
        if rng.random() < spec.miss_rate:
            continue
        det_boxes.append(boxes[k] + rng.normal(0, spec.box_noise_px, 4))
        # Partly hidden objects get the low scores ByteTrack's second association is for.
        scores.append(rng.uniform(0.6, 1.0) if vis[k] >= 0.8 else rng.uniform(0.25, 0.5))
    for _ in range(rng.poisson(spec.false_positive_rate)):
        xy = rng.uniform([0, 0], [spec.width - 40, spec.height - 40])
        det_boxes.append(np.array([*xy, *(xy + rng.uniform(20, 40, 2))]))
        scores.append(rng.uniform(0.2, 0.6))
    b = clip_boxes(np.array(det_boxes).reshape(-1, 4), spec.width, spec.height)
    b[:, 2:] = np.maximum(b[:, 2:], b[:, :2] + 1)
    return truth, Detections(b, scores, np.zeros(len(b), np.int64))
