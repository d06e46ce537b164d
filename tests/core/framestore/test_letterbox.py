"""Letterbox: the scale/padding streammux applies, and mapping boxes back exactly."""

from __future__ import annotations

import numpy as np
import pytest
from heron.core.framestore import Letterbox


@pytest.mark.parametrize(
    ("src", "dst", "padding", "content"),
    [
        ((1920, 1080), (960, 544), True, (960, 540)),  # wider than tall: bottom bars
        ((640, 480), (960, 544), True, (725, 544)),  # 4:3 into 16:9: right bars
        ((1920, 1080), (960, 544), False, (960, 544)),  # stretched
        ((960, 544), (960, 544), True, (960, 544)),  # same size: nothing to do
        ((100, 1000), (960, 544), True, (54, 544)),
    ],
)
def test_fit_keeps_aspect_ratio_only_with_padding(
    src: tuple[int, int], dst: tuple[int, int], padding: bool, content: tuple[int, int]
) -> None:
    box = Letterbox.fit(*src, *dst, padding=padding)
    assert (box.content_w, box.content_h) == content
    assert (box.offset_x, box.offset_y) == (0, 0)
    assert box.padded == (content != dst)


@pytest.mark.parametrize("padding", [True, False])
@pytest.mark.parametrize(("src", "dst"), [((1920, 1080), (960, 544)), ((640, 480), (1280, 720))])
def test_boxes_map_to_the_output_and_back_exactly(
    src: tuple[int, int], dst: tuple[int, int], padding: bool
) -> None:
    box = Letterbox.fit(*src, *dst, padding=padding)
    boxes = np.array([[0, 0, src[0], src[1]], [100.5, 37.25, 411, 299], [3, 4, 5, 6]])
    np.testing.assert_allclose(box.to_source(box.to_output(boxes)), boxes, rtol=0, atol=1e-9)


@pytest.mark.parametrize("padding", [True, False])
def test_a_drawn_box_is_found_where_the_mapping_says(padding: bool) -> None:
    """Draw a white box in a 1280x720 frame, letterbox it to 960x544 with OpenCV, find the box
    in the output, map it back: it is where it was drawn, to within a pixel."""
    src = np.zeros((720, 1280, 3), np.uint8)
    x1, y1, x2, y2 = 200, 120, 840, 600
    src[y1:y2, x1:x2] = 255
    box = Letterbox.fit(1280, 720, 960, 544, padding=padding)
    out = np.full((544, 960, 3), 77, np.uint8)  # garbage the padding must overwrite
    box.apply(src, out)
    if padding:
        assert (out[540:] == 0).all()  # the bottom bars are black
    ys, xs = np.nonzero(out[:, :, 0] > 127)
    found = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], dtype=float)
    np.testing.assert_allclose(box.to_output([[x1, y1, x2, y2]]), found, atol=1.0)
    np.testing.assert_allclose(box.to_source(found), [[x1, y1, x2, y2]], atol=1.5)


def test_boxes_in_the_padding_are_clipped_to_the_source() -> None:
    box = Letterbox.fit(640, 480, 960, 544, padding=True)  # content 725 wide, bars on the right
    back = box.to_source([[700, 500, 900, 544]])
    np.testing.assert_allclose(back, [[700 * 640 / 725, 500 * 480 / 544, 640, 480]])


@pytest.mark.parametrize(
    ("args", "message"),
    [((0, 10, 10, 10), "src_w >= 1, got 0"), ((10, 10, 10, -1), "dst_h >= 1, got -1")],
)
def test_fit_refuses_empty_sizes(args: tuple[int, int, int, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Letterbox.fit(*args, padding=True)


def test_apply_and_boxes_check_shapes() -> None:
    box = Letterbox.fit(64, 48, 32, 32, padding=True)
    with pytest.raises(ValueError, match="expected a 64x48 image, got 10x10"):
        box.apply(np.zeros((10, 10, 3), np.uint8), np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="expected a 32x32 output, got 33x32"):
        box.apply(np.zeros((48, 64, 3), np.uint8), np.zeros((32, 33, 3), np.uint8))
    with pytest.raises(ValueError, match=r"boxes of shape \(N, 4\), got \(1, 3\)"):
        box.to_source([[1, 2, 3]])
