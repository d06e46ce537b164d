"""Test clips made with PyAV: each frame carries its number as big black/white blocks (readable
after lossy H.264) and as text for people looking at the clip."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

BITS = 10  # frame numbers up to 1023
BLOCK = 32  # block side in pixels: survives H.264 at any sane quality


def frame_image(number: int, width: int = 320, height: int = 240) -> np.ndarray:
    """A BGR frame: a gradient background, the number as BITS blocks on the top row, and text."""
    import cv2

    x = np.linspace(0, 255, width, dtype=np.uint8)
    image = np.empty((height, width, 3), np.uint8)
    image[:] = x[None, :, None]
    image[..., 1] = (number * 5) % 256
    for bit in range(BITS):
        on = (number >> bit) & 1
        image[:BLOCK, bit * BLOCK : (bit + 1) * BLOCK] = 255 if on else 0
    cv2.putText(
        image, str(number), (10, height - 20), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (0, 0, 255), 3
    )
    return image


def read_number(image: np.ndarray) -> int:
    """The number `frame_image` drew, read back from the block row's centres."""
    number = 0
    for bit in range(BITS):
        centre = image[
            BLOCK // 4 : 3 * BLOCK // 4, bit * BLOCK + BLOCK // 4 : (bit + 1) * BLOCK - BLOCK // 4
        ]
        if centre.mean() > 127:
            number |= 1 << bit
    return number


def make_clip(
    path: Path,
    frames: int = 48,
    width: int = 320,
    height: int = 240,
    *,
    codec: str = "libx264",
    fps: int = 24,
) -> Path:
    """Encode `frames` numbered frames to `path` (container from the suffix)."""
    import av

    with av.open(str(path), "w") as container:
        stream: Any = container.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, fps)
        stream.options = {"crf": "18"} if codec in ("libx264", "libx265") else {}
        for number in range(frames):
            frame = av.VideoFrame.from_ndarray(frame_image(number, width, height), format="bgr24")
            frame.pts = number
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path
