"""Calibration and evaluation images, preprocessed as the detector expects: RGB, resized to the
network input (OpenCV INTER_AREA, an antialiased downscale like training's), float [0, 1], NCHW.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from heron.engine.errors import CalibrationError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def image_files(folder: Path) -> list[Path]:
    """Images of a folder (its images/ subfolder when it is a KITTI folder), sorted by name."""
    if not folder.is_dir():
        raise CalibrationError(f"{folder}: no such image folder")
    source = folder / "images" if (folder / "images").is_dir() else folder
    paths = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise CalibrationError(f"{source}: no images ({', '.join(IMAGE_SUFFIXES)}) found")
    return paths


def load_image(path: Path, width: int, height: int) -> np.ndarray:
    """float32 (3, height, width) RGB in [0, 1]; CalibrationError naming the file."""
    import cv2

    picture = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if picture is None:
        raise CalibrationError(f"{path}: OpenCV cannot decode this image")
    rgb = cv2.cvtColor(picture, cv2.COLOR_BGR2RGB)
    if rgb.shape[:2] != (height, width):
        rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32) / np.float32(255.0)


def load_batch(paths: Sequence[Path], width: int, height: int) -> np.ndarray:
    return np.stack([load_image(p, width, height) for p in paths])
