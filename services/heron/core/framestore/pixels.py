"""Raw pixel formats a frame may be stored in, and their conversion to BGR."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from heron.core.framestore.errors import BadFrameRefError
from heron.v1.frame_pb2 import PixelFormat


def raw_shape(pixel_format: int, width: int, height: int) -> tuple[int, ...]:
    """The array shape a raw frame of this format and size has in a ring slot."""
    if pixel_format in (PixelFormat.PIXEL_FORMAT_BGR24, PixelFormat.PIXEL_FORMAT_RGB24):
        return (height, width, 3)
    if pixel_format == PixelFormat.PIXEL_FORMAT_GRAY8:
        return (height, width)
    if pixel_format in (PixelFormat.PIXEL_FORMAT_I420, PixelFormat.PIXEL_FORMAT_NV12):
        return (height * 3 // 2, width)
    raise BadFrameRefError(
        "FrameRef.pixel_format: expected BGR24, RGB24, GRAY8, I420 or NV12 for raw pixels, "
        f"got {format_name(pixel_format)}"
    )


def format_name(pixel_format: int) -> str:
    for name, value in PixelFormat.items():
        if value == pixel_format:
            return name
    return str(pixel_format)


def to_bgr(image: npt.NDArray[Any], pixel_format: int, *, copy: bool) -> npt.NDArray[np.uint8]:
    """`image` (as stored) converted to BGR uint8 HxWx3; BGR24 stays a view unless `copy`."""
    if image.dtype != np.uint8:
        raise BadFrameRefError(f"stored frame: expected uint8 pixels, got {image.dtype}")
    if pixel_format == PixelFormat.PIXEL_FORMAT_BGR24:
        return image.copy() if copy else image
    import cv2

    codes: dict[int, int] = {
        PixelFormat.PIXEL_FORMAT_RGB24: cv2.COLOR_RGB2BGR,
        PixelFormat.PIXEL_FORMAT_GRAY8: cv2.COLOR_GRAY2BGR,
        PixelFormat.PIXEL_FORMAT_I420: cv2.COLOR_YUV2BGR_I420,
        PixelFormat.PIXEL_FORMAT_NV12: cv2.COLOR_YUV2BGR_NV12,
    }
    return np.asarray(cv2.cvtColor(image, codes[pixel_format]), dtype=np.uint8)
