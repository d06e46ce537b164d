"""Inline JPEG, the frame location that crosses hosts (FrameRef.jpeg). OpenCV does the codec."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from heron.core.framestore.errors import JpegError

DEFAULT_QUALITY = 90


def encode_jpeg(bgr: npt.NDArray[Any], quality: int = DEFAULT_QUALITY) -> bytes:
    """A BGR (HxWx3) or gray (HxW) uint8 image as JPEG bytes."""
    import cv2

    if not 1 <= quality <= 100:
        raise ValueError(f"encode_jpeg: expected quality 1..100, got {quality}")
    if bgr.dtype != np.uint8 or not (bgr.ndim == 2 or (bgr.ndim == 3 and bgr.shape[2] == 3)):
        raise JpegError(
            f"encode_jpeg: expected a uint8 HxWx3 (BGR) or HxW image, got {bgr.dtype} "
            f"of shape {bgr.shape}"
        )
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise JpegError(f"encode_jpeg: OpenCV could not encode a {bgr.shape} image")
    return bytes(data)


def decode_jpeg(data: bytes) -> npt.NDArray[np.uint8]:
    """JPEG bytes as a BGR uint8 HxWx3 image (gray JPEGs are expanded to three channels)."""
    import cv2

    if len(data) < 4 or data[:2] != b"\xff\xd8":
        head = data[:4].hex() or "nothing"
        raise JpegError(
            f"decode_jpeg: expected JPEG data starting with ffd8, got {head} ({len(data)} B)"
        )
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise JpegError(f"decode_jpeg: {len(data)} B start like a JPEG but do not decode")
    return np.asarray(image, dtype=np.uint8)
