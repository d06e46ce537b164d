"""Labels go where nvdsosd puts them, unless that hides another label; always in the image."""

from __future__ import annotations

import random

import numpy as np
import pytest
from heron.overlay.labels import Box, Place, Size, place_labels
from heron.v1.detection_pb2 import BoundingBox, DetectedObject

from tests.overlay.test_osd import draw, obj

W, H = 320, 240
LABEL: Size = (50, 16)


def rects(places: list[Place], sizes: list[Size]) -> list[tuple[int, int, int, int]]:
    return [(x, y, x + w, y + h) for (x, y), (w, h) in zip(places, sizes, strict=True)]


def overlapping(places: list[Place], sizes: list[Size]) -> list[tuple[int, int]]:
    r = rects(places, sizes)
    return [
        (j, i)
        for i, (x1, y1, x2, y2) in enumerate(r)
        for j, (a1, b1, a2, b2) in enumerate(r[:i])
        if min(x2, a2) > max(x1, a1) and min(y2, b2) > max(y1, b1)
    ]


def inside(places: list[Place], sizes: list[Size], width: int = W, height: int = H) -> bool:
    return all(
        x1 >= 0 and y1 >= 0 and x2 <= width and y2 <= height
        for x1, y1, x2, y2 in rects(places, sizes)
    )


@pytest.mark.parametrize(
    ("box", "expected"),
    [((40, 60, 100, 100), (40, 44)),  # above the top-left corner, as nvdsosd
     ((40, 5, 100, 60), (40, 5)),  # no room above: inside the top edge
     ((290, 60, 320, 100), (270, 44))],  # past the right edge: shifted left
    ids=["above", "inside at the top", "shifted into the image"],
)  # fmt: skip
def test_a_single_label_keeps_the_deepstream_place(box: Box, expected: Place) -> None:
    assert place_labels([box], [LABEL], W, H) == [expected]


def test_labels_of_a_crowded_row_do_not_overlap() -> None:
    """Six faces side by side, narrower than their labels: at nvdsosd's place every label
    would cover its neighbour's."""
    boxes: list[Box] = [(60 + 30 * i, 100, 90 + 30 * i, 140) for i in range(6)]
    sizes = [LABEL] * len(boxes)
    places = place_labels(boxes, sizes, W, H)
    assert places[0] == (60, 84)  # the first keeps nvdsosd's place
    assert overlapping(places, sizes) == []
    assert inside(places, sizes)


def nvdsosd(boxes: list[Box], sizes: list[Size]) -> list[Place]:
    return [(x1, y1 - h) for (x1, y1, _, _), (_, h) in zip(boxes, sizes, strict=True)]


SIZES: list[Size] = [(100, 25) if i % 2 else (72, 25) for i in range(50)]  # No-Mask 12, Mask 7


def test_fifty_faces_in_rows_are_labelled_without_overlaps() -> None:
    """Ten faces a row, five rows, 50 px apart: labels 72-100 px wide at nvdsosd's place
    would hide 45 pairs of each other."""
    boxes: list[Box] = [
        (20 + 50 * c, 30 + 60 * r, 60 + 50 * c, 78 + 60 * r) for r in range(5) for c in range(10)
    ]
    assert len(overlapping(nvdsosd(boxes, SIZES), SIZES)) == 45
    places = place_labels(boxes, SIZES, 640, 480)
    assert overlapping(places, SIZES) == []
    assert inside(places, SIZES, 640, 480)
    assert place_labels(boxes, SIZES, 640, 480) == places  # the same frame, the same places


@pytest.mark.parametrize("seed", range(5))
def test_a_scattered_crowd_of_fifty_is_labelled_without_overlaps(seed: int) -> None:
    rng = random.Random(seed)
    boxes: list[Box] = []
    while len(boxes) < 50:  # faces 40x48 anywhere in 1280x720, none covering another
        x, y = rng.randrange(0, 1280 - 40), rng.randrange(0, 720 - 48)
        box = (x, y, x + 40, y + 48)
        if all(not (b[0] < box[2] and box[0] < b[2] and b[1] < box[3] and box[1] < b[3])
               for b in boxes):  # fmt: skip
            boxes.append(box)
    assert overlapping(nvdsosd(boxes, SIZES), SIZES)  # some would hide each other
    places = place_labels(boxes, SIZES, 1280, 720)
    assert overlapping(places, SIZES) == []
    assert inside(places, SIZES, 1280, 720)


def test_with_no_free_place_the_least_overlap_wins_and_stays_inside() -> None:
    """More labels than the image holds: each still goes somewhere in the image."""
    boxes: list[Box] = [(10, 10, 30, 30)] * 12
    sizes = [(40, 12)] * 12
    places = place_labels(boxes, sizes, 60, 40)
    assert inside(places, sizes, 60, 40)
    assert len(set(places[:4])) == 4  # the first ones still find places of their own


def test_a_label_larger_than_the_image_starts_at_its_corner() -> None:
    assert place_labels([(5, 5, 10, 10)], [(100, 50)], 60, 40) == [(0, 0)]


@pytest.mark.parametrize(
    ("boxes", "sizes", "message"),
    [([(0, 0, 1, 1)], [], "1 boxes but 0 label sizes"),
     ([(0, 0, 1, 1)], [(0, 5)], "at least 1x1 pixels, got")],
)  # fmt: skip
def test_bad_input_is_refused(boxes: list[Box], sizes: list[Size], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        place_labels(boxes, sizes, W, H)


def test_the_osd_draws_crowded_labels_apart() -> None:
    """Two faces side by side: the second's label goes inside its box instead of over the
    first's; both labels are drawn after the boxes, so no outline crosses them."""
    image = draw([obj(20, 40, 30, 40), obj(50, 40, 30, 40, cls=1)], display_text=True)
    background = np.all(image == (77, 77, 77), axis=2)
    assert background[20:40, 20:50].any()  # the first label above its box
    assert not background[20:40, 70:80].any()  # nothing above the second's right half
    assert background[42:56, 52:78].any()  # the second label inside its box, at the top


def test_labels_are_not_drawn_for_boxes_outside_the_image() -> None:
    outside = DetectedObject(bbox=BoundingBox(left=200, top=200, width=10, height=10), label="x")
    image = draw([outside], display_text=True)
    assert not image.any()
