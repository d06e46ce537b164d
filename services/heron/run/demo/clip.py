"""A demo clip for a fresh clone: a slow pan and zoom over public-domain photos of real faces.

The photos come with registry packages, so nothing is downloaded: matplotlib's sample
`grace_hopper.jpg` (always installed with matplotlib) and, when scikit-image is installed,
its `astronaut()` (Eileen Collins). Both are public domain (US government works).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Photo:
    name: str
    image: np.ndarray  # BGR
    credit: str


def available_photos() -> list[Photo]:
    """The face photos the installed packages ship (at least matplotlib's Grace Hopper)."""
    import cv2
    import matplotlib.cbook

    path = str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"{path}: matplotlib's sample photo cannot be read")
    photos = [Photo("grace_hopper", image, "matplotlib sample data")]
    try:  # optional: only when scikit-image is installed
        skdata: Any = importlib.import_module("skimage.data")
    except ImportError:
        return photos
    rgb = skdata.astronaut()
    photos.append(Photo("astronaut", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), "scikit-image"))
    return photos


def _fit(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """The photo scaled to cover width x height (cropped at the bottom/sides, not stretched)."""
    import cv2

    scale = max(width / image.shape[1], height / image.shape[0])
    resized = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    x0 = (resized.shape[1] - width) // 2
    return resized[:height, x0 : x0 + width]


def ken_burns(photo: np.ndarray, t: float, width: int, height: int, zoom: float) -> np.ndarray:
    """Frame at t in [0, 1]: from the whole photo to a `zoom`x crop around its face."""
    import cv2

    scale = 1.0 + (zoom - 1.0) * t
    w, h = width / scale, height / scale
    # Faces sit a little below the middle of these portraits: drift there while zooming in.
    cx = width / 2 + 0.05 * width * t
    cy = height / 2 + 0.08 * height * t
    x0 = float(np.clip(cx - w / 2, 0, width - w))
    y0 = float(np.clip(cy - h / 2, 0, height - h))
    affine = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], np.float32)
    return cv2.warpAffine(photo, affine, (width, height), flags=cv2.INTER_LINEAR)


def make_photo_clip(
    path: Path,
    *,
    seconds_per_photo: float = 5.0,
    fps: int = 25,
    width: int = 640,
    height: int = 480,
    zoom: float = 1.4,
    photos: list[Photo] | None = None,
) -> Path:
    """Write an H.264 MP4: each photo zooms in, then back out, over `seconds_per_photo`."""
    import av

    photos = photos if photos is not None else available_photos()
    if not photos:
        raise ValueError("make_photo_clip: no photos to make a clip of")
    frames_each = max(2, round(seconds_per_photo * fps))
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream: Any = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, fps)
        pts = 0
        for photo in photos:
            base = _fit(photo.image, width, height)
            for i in range(frames_each):
                # Smooth in-and-out: 0 → 1 → 0 over the photo's segment.
                t = float(np.sin(np.pi * i / (frames_each - 1)))
                frame = av.VideoFrame.from_ndarray(
                    ken_burns(base, t, width, height, zoom), format="bgr24"
                )
                frame.pts = pts
                pts += 1
                container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path
