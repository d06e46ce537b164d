"""Boxes in source coordinates land on the tiled canvas where the frame's pixels went."""

from __future__ import annotations

import numpy as np
import pytest
from heron.core.framestore import Letterbox
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


MUXED = Letterbox.fit(640, 480, 320, 240, padding=False)  # a 640x480 source in a 320x240 batch


def meta(
    stream: str, source: int, box: tuple[float, float, float, float], stored: Letterbox = MUXED
) -> FrameMetadata:
    """A frame of a 640x480 source whose ref says how it was stored (`stored`)."""
    ref = FrameRef(stream_id=stream, source_id=source)
    stored.fill(ref)
    return FrameMetadata(
        frame=ref,
        objects=[DetectedObject(bbox=BoundingBox(left=box[0], top=box[1], width=box[2],
                                                 height=box[3]))],
    )  # fmt: skip


def outline(image: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(np.all(image == GREEN, axis=2))
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


@pytest.mark.parametrize(
    ("stored", "expected"),
    [(MUXED, (50, 50, 100, 100)),  # 640x480 -> 320x240: both axes halved
     (Letterbox.fit(640, 480, 320, 480, padding=True), (50, 50, 100, 100)),  # bars below
     (Letterbox.fit(640, 480, 320, 480, padding=False), (50, 100, 100, 200)),  # stretched
     (Letterbox(640, 480, 360, 260, 320, 240, offset_x=20, offset_y=10), (70, 60, 120, 110)),
     (Letterbox.identity(640, 480), (100, 100, 200, 200))],  # ingest's own frame
    ids=["halved", "letterboxed", "stretched", "offset", "identity"],
)  # fmt: skip
def test_boxes_are_placed_as_the_frame_ref_says(
    stored: Letterbox, expected: tuple[int, ...]
) -> None:
    """The compositor maps source boxes with the placement the ref carries, nothing else."""
    pixels = np.zeros((stored.dst_h, stored.dst_w, 3), np.uint8)
    frame = Loaded(meta("a", 0, (100, 100, 100, 100), stored), pixels)
    image = Compositor(osd(), None).draw(frame)
    assert outline(image) == expected


def test_tiled_boxes_land_in_the_sources_tile() -> None:
    tiler = Tiler(1, 2, 640, 240)
    compositor = Compositor(osd(), tiler)
    frames = [
        Loaded(meta("a", 0, (0, 0, 64, 48)), np.zeros((240, 320, 3), np.uint8)),
        Loaded(meta("b", 1, (100, 100, 100, 100)), np.zeros((240, 320, 3), np.uint8)),
    ]
    canvas, untiled = compositor.tile(frames)
    assert untiled == []
    assert outline(canvas[:, 320:]) == (50, 50, 100, 100)
    assert outline(canvas[:, :320]) == (0, 0, 32, 24)


def test_frames_of_sources_without_a_tile_are_returned() -> None:
    compositor = Compositor(osd(), Tiler(1, 1, 320, 240))
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
