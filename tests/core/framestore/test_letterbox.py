"""Letterbox: the scale/padding streammux applies, and mapping boxes back exactly."""

from __future__ import annotations

import numpy as np
import pytest
from heron.core.framestore import BadFrameRefError, Letterbox
from heron.v1.frame_pb2 import FrameRef, Placement


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


@pytest.mark.parametrize(
    "box",
    [
        Letterbox.fit(640, 480, 960, 544, padding=True),  # right bars
        Letterbox.fit(640, 480, 960, 544, padding=False),  # stretched
        Letterbox(640, 480, 960, 544, 600, 450, offset_x=7, offset_y=3),  # off the corner
    ],
    ids=["letterboxed", "stretched", "offset"],
)
def test_the_mapping_round_trips_through_a_frame_ref(box: Letterbox) -> None:
    """What a producer writes into a FrameRef (`fill`) is what a consumer reads back
    (`from_proto`), through the wire format too."""
    ref = FrameRef(stream_id="cam", frame_number=4)
    box.fill(ref)
    assert (ref.width, ref.height, ref.stored_width, ref.stored_height) == (640, 480, 960, 544)
    assert ref.placement == box.to_proto()
    assert (ref.placement.content_width, ref.placement.offset_x) == (box.content_w, box.offset_x)
    assert Letterbox.from_proto(FrameRef.FromString(ref.SerializeToString())) == box


def test_refs_without_the_new_fields_read_as_before() -> None:
    """Refs written before stored_width/height and placement: the pixels are width x height
    (identity); a stored size without a placement is the whole stored frame (stretched)."""
    assert Letterbox.from_proto(FrameRef(width=320, height=240)) == Letterbox.identity(320, 240)
    stretched = Letterbox.from_proto(
        FrameRef(width=640, height=480, stored_width=320, stored_height=200)
    )
    assert stretched == Letterbox.fit(640, 480, 320, 200, padding=False)


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (FrameRef(stream_id="cam", frame_number=2), r"FrameRef cam#2: no size"),
        (
            FrameRef(stream_id="cam", width=64, height=48, stored_width=32, stored_height=32,
                     placement=Placement(content_width=32, content_height=24, offset_x=1)),
            r"placement 32x24 at \(1, 0\) does not fit the stored 32x32 pixels",
        ),
        (
            FrameRef(width=64, height=48, stored_width=32, stored_height=32,
                     placement=Placement(content_width=0, content_height=24)),
            r"placement 0x24 at \(0, 0\)",
        ),
    ],
    ids=["no-size", "out-of-bounds", "empty-content"],
)  # fmt: skip
def test_a_placement_that_places_nothing_is_a_bad_frame_ref(ref: FrameRef, message: str) -> None:
    with pytest.raises(BadFrameRefError, match=message):
        Letterbox.from_proto(ref)
