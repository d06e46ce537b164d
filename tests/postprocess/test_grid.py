"""Grid decode: hand-built outputs decode to the exact pixels placed, and encode inverts it."""

from __future__ import annotations

import numpy as np
import pytest
from heron.postprocess import BBoxCoding, GridShapeError, decode_bbox, encode_bbox, grid_centers


def test_grid_centers_follow_stride_and_offset() -> None:
    cx, cy = grid_centers(60, 34, 16)
    assert cx.shape == (60,) and cy.shape == (34,)
    assert cx[0] == 0.5 and cx[1] == 16.5 and cx[59] == 59 * 16 + 0.5
    assert cy[33] == 33 * 16 + 0.5
    cx, _ = grid_centers(4, 2, stride=8, offset=0.0)
    assert cx.tolist() == [0.0, 8.0, 16.0, 24.0]


def test_grid_centers_reject_empty_grids() -> None:
    with pytest.raises(GridShapeError, match="must be > 0"):
        grid_centers(0, 34, 16)


def test_decode_hand_built_cell_gives_exact_pixels() -> None:
    # Class 1, cell (gx=3, gy=2): centre (48.5, 32.5); offsets chosen by hand with scale 35.
    bbox = np.zeros((8, 34, 60), np.float32)
    bbox[4:8, 2, 3] = [0.5, 0.25, 1.0, 2.0]
    boxes = decode_bbox(bbox)
    assert boxes.shape == (1, 2, 4, 34, 60)
    assert boxes[0, 1, :, 2, 3].tolist() == [48.5 - 17.5, 32.5 - 8.75, 48.5 + 35.0, 32.5 + 70.0]
    # An all-zero cell decodes to its own centre.
    assert boxes[0, 0, :, 0, 0].tolist() == [0.5, 0.5, 0.5, 0.5]


def test_decode_uses_scale_and_offset_from_coding() -> None:
    bbox = np.zeros((4, 2, 2), np.float32)
    bbox[:, 1, 1] = [1.0, 1.0, 1.0, 1.0]
    boxes = decode_bbox(bbox, BBoxCoding(stride=10, scale=20.0, offset=0.0))
    assert boxes[0, 0, :, 1, 1].tolist() == [-10.0, -10.0, 30.0, 30.0]


def test_encode_then_decode_recovers_boxes_in_every_cell() -> None:
    boxes = np.array([[100.0, 120.0, 220.0, 260.0], [0.0, 0.0, 959.0, 543.0]], np.float32)
    offsets = encode_bbox(boxes, 60, 34)
    assert offsets.shape == (2, 4, 34, 60)
    for n in range(2):
        decoded = decode_bbox(offsets[n])[0, 0]
        np.testing.assert_allclose(
            decoded, np.broadcast_to(boxes[n, :, None, None], decoded.shape), atol=1e-3
        )


@pytest.mark.parametrize("shape", [(7, 34, 60), (2, 8, 34), (34, 60)])
def test_decode_rejects_malformed_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises(GridShapeError, match="output_bbox must have shape"):
        decode_bbox(np.zeros(shape, np.float32))
