"""Inline JPEG encode/decode, and what they refuse."""

from __future__ import annotations

import numpy as np
import pytest
from heron.core.framestore import JpegError, decode_jpeg, encode_jpeg


@pytest.mark.parametrize("shape", [(64, 96, 3), (64, 96), (1, 1, 3)])
def test_round_trip_gives_bgr(shape: tuple[int, ...]) -> None:
    image = np.full(shape, 100, np.uint8)
    back = decode_jpeg(encode_jpeg(image, 95))
    assert back.shape == (shape[0], shape[1], 3)
    assert abs(int(back.mean()) - 100) <= 2


def test_higher_quality_means_more_bytes() -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    assert len(encode_jpeg(image, 95)) > len(encode_jpeg(image, 20))


@pytest.mark.parametrize(
    ("image", "quality", "error", "message"),
    [
        (np.zeros((4, 4, 3), np.uint8), 0, ValueError, "quality 1..100, got 0"),
        (np.zeros((4, 4, 3), np.uint8), 101, ValueError, "quality 1..100, got 101"),
        (np.zeros((4, 4, 4), np.uint8), 90, JpegError, r"got uint8 of shape \(4, 4, 4\)"),
        (np.zeros((4, 4, 3), np.float64), 90, JpegError, r"got float64"),
    ],
)
def test_encode_refuses_bad_input(
    image: np.ndarray, quality: int, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        encode_jpeg(image, quality)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "got nothing"),
        (b"\x89PNG\r\n", "got 89504e47"),
        (b"\xff\xd8\xff\xdb" + b"\x00" * 50, "do not decode"),
    ],
)
def test_decode_refuses_bad_bytes(data: bytes, message: str) -> None:
    with pytest.raises(JpegError, match=message):
        decode_jpeg(data)
