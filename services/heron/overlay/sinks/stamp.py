"""A frame number drawn into the pixels, so a viewer of an encoded stream can read it back.

Used to measure glass-to-glass latency and to spot lost or repeated frames through an encoder:
metadata does not survive H.264, large black and white blocks do. The stamp is a row of `BITS`
square blocks along the top-left of the frame, most significant bit first.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

BITS = 16
MODULUS = 1 << BITS


def block_size(width: int) -> int:
    """Side of one bit's block: the stamp spans about 80 % of the frame's width, ≥ 8 px."""
    return max(8, (width * 4 // 5) // BITS // 8 * 8)


def draw_stamp(bgr: npt.NDArray[np.uint8], number: int) -> None:
    """Write `number % 2**BITS` into the frame in place (white block = 1, black = 0)."""
    side = block_size(bgr.shape[1])
    if bgr.shape[0] < side or bgr.shape[1] < side * BITS:
        raise ValueError(
            f"frame {bgr.shape[1]}x{bgr.shape[0]} too small for a stamp of {BITS} {side}px blocks"
        )
    value = number % MODULUS
    for bit in range(BITS):
        on = (value >> (BITS - 1 - bit)) & 1
        bgr[:side, bit * side : (bit + 1) * side] = 255 if on else 0


def read_stamp(bgr: npt.NDArray[np.uint8]) -> int:
    """The number `draw_stamp` wrote, read from the middle of each block (robust to blur)."""
    side = block_size(bgr.shape[1])
    gray = bgr[:side, : side * BITS].mean(axis=2)
    inner = slice(side // 4, side - side // 4)
    value = 0
    for bit in range(BITS):
        level = gray[inner, bit * side + inner.start : bit * side + inner.stop].mean()
        value = (value << 1) | int(level > 127)
    return value
