"""Boxes in source coordinates land on the tiled canvas where the frame's pixels went."""

from __future__ import annotations

import numpy as np
import pytest
from heron.overlay.colors import ClassColors
from heron.overlay.compose import Compositor, Loaded, composites
from heron.overlay.fonts import hershey_font
from heron.overlay.osd import OnScreenDisplay, OsdStyle, TextStyle
from heron.overlay.tiler import Tiler
from heron.v1.detection_pb2 import BoundingBox, DetectedObject, FrameMetadata
from heron.v1.frame_pb2 import FrameRef

GREEN = (0, 255, 0)


def osd() -> OnScreenDisplay:
    font = hershey_font("Sans")
    return OnScreenDisplay(
        OsdStyle(
            colors=ClassColors((0.0, 1.0, 0.0, 1.0)),
            border_width=1,
            text=TextStyle.make(font, 12, (255, 255, 255)),
            text_bg=(0, 0, 0),
            text_bg_alpha=1.0,
            display_text=False,
        )
    )


def meta(stream: str, source: int, box: tuple[float, float, float, float]) -> FrameMetadata:
    return FrameMetadata(
        frame=FrameRef(stream_id=stream, source_id=source, width=640, height=480),
        objects=[DetectedObject(bbox=BoundingBox(left=box[0], top=box[1], width=box[2],
                                                 height=box[3]))],
    )  # fmt: skip


def outline(image: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(np.all(image == GREEN, axis=2))
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


@pytest.mark.parametrize(
    ("padding", "expected"),
    [(False, (50, 50, 100, 100)),  # 640x480 -> 320x240: both axes halved
     (True, (50, 50, 100, 100))],  # same aspect: padding changes nothing
)  # fmt: skip
def test_muxer_sized_pixels_get_boxes_scaled(padding: bool, expected: tuple[int, ...]) -> None:
    frame = Loaded(meta("a", 0, (100, 100, 100, 100)), np.zeros((240, 320, 3), np.uint8))
    image = Compositor(osd(), None, muxer_padding=padding).draw(frame)
    assert outline(image) == expected


def test_tiled_boxes_land_in_the_sources_tile() -> None:
    tiler = Tiler(1, 2, 640, 240)
    compositor = Compositor(osd(), tiler, muxer_padding=False)
    frames = [
        Loaded(meta("a", 0, (0, 0, 64, 48)), np.zeros((240, 320, 3), np.uint8)),
        Loaded(meta("b", 1, (100, 100, 100, 100)), np.zeros((240, 320, 3), np.uint8)),
    ]
    canvas, untiled = compositor.tile(frames)
    assert untiled == []
    assert outline(canvas[:, 320:]) == (50, 50, 100, 100)
    assert outline(canvas[:, :320]) == (0, 0, 32, 24)


def test_frames_of_sources_without_a_tile_are_returned() -> None:
    compositor = Compositor(osd(), Tiler(1, 1, 320, 240), muxer_padding=False)
    far = Loaded(meta("c", 3, (0, 0, 10, 10)), np.zeros((240, 320, 3), np.uint8))
    canvas, untiled = compositor.tile([far])
    assert untiled == [far] and not canvas.any()


@pytest.mark.parametrize(
    ("streams", "groups"),
    [(["a", "b"], [[0, 1]]), (["a", "a", "b"], [[0], [1, 2]]), (["a", "b", "a", "b"],
     [[0, 1], [2, 3]]), ([], [])],
)  # fmt: skip
def test_a_read_splits_into_one_frame_per_source(
    streams: list[str], groups: list[list[int]]
) -> None:
    metas = [FrameMetadata(frame=FrameRef(stream_id=s)) for s in streams]
    assert composites(metas) == groups
