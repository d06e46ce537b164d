"""Checking the frames handed to a sink and converting them to what the encoder takes."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


class FrameFormatError(ValueError):
    """A frame of the wrong type, dtype or size was pushed."""


def check_bgr(frame: object, width: int, height: int) -> npt.NDArray[np.uint8]:
    """The frame itself when it is an (height, width, 3) uint8 BGR array; else a clear error."""
    expected = f"expected a ({height}, {width}, 3) uint8 BGR numpy array"
    if not isinstance(frame, np.ndarray):
        raise FrameFormatError(f"{expected}, got {type(frame).__name__}")
    if frame.dtype != np.uint8 or frame.shape != (height, width, 3):
        raise FrameFormatError(f"{expected}, got {frame.shape} {frame.dtype}")
    return frame


def bgr_to_i420(bgr: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Planar Y, U, V (4:2:0) as one (height * 3 / 2, width) array, the layout appsrc announces."""
    import cv2

    return np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420), dtype=np.uint8)
