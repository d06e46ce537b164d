"""Box formats: every conversion inverts its partner, keeps the dtype and leaves its input alone."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from heron.core.boxes import (
    clip_boxes,
    cxcywh_to_xyxy,
    ltwh_to_xyxy,
    pairwise_iou,
    xyxy_to_cxcywh,
    xyxy_to_ltwh,
)
from numpy.typing import NDArray

XYXY = [[10, 20, 50, 80], [0, 0, 0, 0], [1.5, 2.5, 4.0, 3.0]]
LTWH = [[10, 20, 40, 60], [0, 0, 0, 0], [1.5, 2.5, 2.5, 0.5]]
CXCYWH = [[30, 50, 40, 60], [0, 0, 0, 0], [2.75, 2.75, 2.5, 0.5]]

Convert = Callable[[NDArray[Any]], NDArray[Any]]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("forward", "back", "other"),
    [(xyxy_to_ltwh, ltwh_to_xyxy, LTWH), (xyxy_to_cxcywh, cxcywh_to_xyxy, CXCYWH)],
)
def test_conversions_match_hand_values_and_invert(
    forward: Convert, back: Convert, other: Sequence[Sequence[float]], dtype: type
) -> None:
    xyxy: NDArray[Any] = np.array(XYXY, dtype)
    kept = xyxy.copy()
    converted = forward(xyxy)
    assert converted.dtype == dtype
    np.testing.assert_array_equal(converted, np.array(other, dtype))
    np.testing.assert_array_equal(back(converted), xyxy)
    np.testing.assert_array_equal(xyxy, kept)  # the input is never written


@pytest.mark.parametrize("convert", [xyxy_to_ltwh, ltwh_to_xyxy, xyxy_to_cxcywh, cxcywh_to_xyxy])
def test_one_box_converts_like_a_row(convert: Convert) -> None:
    boxes = np.array(XYXY, np.float64)
    for row, converted in zip(boxes, convert(boxes), strict=True):
        np.testing.assert_array_equal(convert(row), converted)


def test_clip_keeps_boxes_inside_the_image() -> None:
    boxes = np.array([[-5, -1, 30, 50], [10, 10, 20, 20]], np.float32)
    clipped = clip_boxes(boxes, 25, 40)
    assert clipped.dtype == np.float32
    assert clipped.tolist() == [[0, 0, 25, 40], [10, 10, 20, 20]]
    assert boxes[0].tolist() == [-5, -1, 30, 50]


def test_pairwise_iou_hand_values() -> None:
    a = np.array([[0, 0, 100, 100], [10, 0, 110, 100], [300, 300, 400, 400], [0, 0, 0, 0]], "f4")
    b = np.array([[0, 0, 100, 100], [0, 0, 50, 100]], np.float32)
    iou = pairwise_iou(a, b)
    assert iou.dtype == np.float32 and pairwise_iou(a, b, np.float64).dtype == np.float64
    assert iou[0].tolist() == pytest.approx([1.0, 0.5])
    assert iou[1, 0] == pytest.approx(9000 / 11000)
    assert iou[2].tolist() == [0.0, 0.0]
    assert iou[3].tolist() == [0.0, 0.0]  # empty union: 0, not NaN
    assert pairwise_iou(a, b[:0]).shape == (4, 0)
