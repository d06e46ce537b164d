"""The frame number drawn into pixels survives H.264 (see test_rtsp) and reads back exactly."""

from __future__ import annotations

import numpy as np
import pytest
from heron.overlay.sinks.stamp import MODULUS, draw_stamp, read_stamp


@pytest.mark.parametrize(("width", "height"), [(160, 120), (320, 240), (960, 544), (1920, 1080)])
@pytest.mark.parametrize("number", [0, 1, 12345, MODULUS - 1, MODULUS + 7])
def test_a_stamp_reads_back(width: int, height: int, number: int) -> None:
    rng = np.random.default_rng(number)
    frame = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    draw_stamp(frame, number)
    noisy = np.clip(frame.astype(np.int16) + rng.integers(-40, 41, frame.shape), 0, 255)
    assert read_stamp(noisy.astype(np.uint8)) == number % MODULUS


def test_a_frame_too_small_for_a_stamp_is_refused() -> None:
    with pytest.raises(ValueError, match="too small for a stamp"):
        draw_stamp(np.zeros((8, 100, 3), np.uint8), 1)
