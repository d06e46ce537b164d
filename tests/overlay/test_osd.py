"""The OSD draws boxes of the configured colour exactly where the metadata says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from heron.overlay.colors import ClassColors, alpha, to_bgr
from heron.overlay.fonts import hershey_font
from heron.overlay.osd import OnScreenDisplay, OsdStyle, TextStyle, label_text
from heron.v1.detection_pb2 import BoundingBox, DetectedObject

from tests.overlay.app_config import load_app

GREEN, RED = (0, 255, 0), (0, 0, 255)


def style(**kw: object) -> OsdStyle:
    font = hershey_font("Sans")
    base = dict(
        colors=ClassColors((1.0, 0.0, 0.0, 1.0), {0: (0.0, 1.0, 0.0, 1.0)}),
        border_width=2,
        text=TextStyle.make(font, 12, (255, 255, 255)),
        text_bg=(77, 77, 77),
        text_bg_alpha=1.0,
        display_text=False,
    )
    base.update(kw)
    return OsdStyle(**base)  # type: ignore[arg-type]


def obj(  # noqa: PLR0917 -- a box reads best as left, top, width, height
    left: float, top: float, w: float, h: float, cls: int = 0, tid: int = 0
) -> DetectedObject:
    return DetectedObject(
        bbox=BoundingBox(left=left, top=top, width=w, height=h),
        class_id=cls,
        label=["Mask", "No-Mask"][cls],
        tracker_id=tid,
    )


def draw(objects: list[DetectedObject], **kw: object) -> np.ndarray:
    image = np.zeros((120, 160, 3), np.uint8)
    boxes = np.array(
        [(o.bbox.left, o.bbox.top, o.bbox.left + o.bbox.width, o.bbox.top + o.bbox.height)
         for o in objects],
        np.float64,
    ).reshape(-1, 4)  # fmt: skip
    OnScreenDisplay(style(**kw)).draw(image, objects, boxes)
    return image


@pytest.mark.parametrize(("cls", "colour"), [(0, GREEN), (1, RED)])
def test_box_outline_is_exactly_where_the_metadata_says(cls: int, colour: tuple[int, ...]) -> None:
    image = draw([obj(20, 30, 40, 50, cls)])
    painted = np.all(image == colour, axis=2)
    ys, xs = np.nonzero(painted)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (20, 59, 30, 79)
    # border-width 2, inside the box: rows 30-31 and 78-79, columns 20-21 and 58-59
    assert painted[30:32, 20:60].all() and painted[78:80, 20:60].all()
    assert painted[30:80, 20:22].all() and painted[30:80, 58:60].all()
    assert not image[32:78, 22:58].any()  # the inside is untouched
    assert painted.sum() == 2 * (40 * 2) + 2 * (46 * 2)


def test_boxes_are_clipped_at_the_image_edge() -> None:
    image = draw([obj(-10, -10, 30, 30), obj(150, 110, 40, 40, 1)])
    assert np.all(image[0:2, 0:20] == GREEN)
    assert np.all(image[110:120, 150:152] == RED)


def test_label_has_background_above_the_box_and_shows_tracker_id() -> None:
    image = draw([obj(40, 60, 60, 40, tid=17)], display_text=True, display_tracking_id=True)
    above = image[40:60, 40:100]
    assert np.any(np.all(above == (77, 77, 77), axis=2))  # the label background
    assert np.any(np.all(above == (255, 255, 255), axis=2))  # white text on it
    assert label_text(obj(0, 0, 1, 1, tid=17), True) == "Mask 17"
    assert label_text(obj(0, 0, 1, 1, tid=17), False) == "Mask"
    assert label_text(obj(0, 0, 1, 1), True) == "Mask"  # no id before the tracker gave one


def test_label_goes_inside_a_box_at_the_top_edge() -> None:
    image = draw([obj(40, 0, 60, 60)], display_text=True)
    assert np.any(np.all(image[2:20, 42:98] == (77, 77, 77), axis=2))


def test_translucent_label_background_blends() -> None:
    image = draw([obj(40, 60, 60, 40)], display_text=True, text_bg=(200, 0, 0), text_bg_alpha=0.5)
    assert np.any(np.all(image[40:60, 40:100] == (100, 0, 0), axis=2))


def test_box_fill_blends_inside_the_box() -> None:
    colors = ClassColors((1.0, 0.0, 0.0, 1.0), fill_default=(0.0, 0.0, 1.0, 0.5))
    image = draw([obj(20, 20, 40, 40)], colors=colors)
    assert tuple(image[40, 40]) == (128, 0, 0)


def test_clock_is_drawn_at_its_offset() -> None:
    font = hershey_font("Mono")
    clock = TextStyle.make(font, 12, (0, 0, 255))
    image = np.zeros((120, 160, 3), np.uint8)
    OnScreenDisplay(style(clock=clock, clock_xy=(10, 80))).draw_clock(image, now=0)
    ys, xs = np.nonzero(image[..., 2])
    assert ys.min() >= 80 and xs.min() >= 10 and len(xs) > 0


@pytest.mark.parametrize(
    ("rgba", "bgr", "a"),
    [((1.0, 0.0, 0.0, 1.0), (0, 0, 255), 1.0), ((0.3, 0.3, 0.3, 0.5), (76, 76, 76), 0.5),
     ((2.0, -1.0, 0.5, 1.0), (128, 0, 255), 1.0)],
)  # fmt: skip
def test_rgba_floats_become_bgr_bytes(
    rgba: tuple[float, ...], bgr: tuple[int, ...], a: float
) -> None:
    assert to_bgr(rgba) == bgr
    assert alpha(rgba) == a


@pytest.mark.parametrize(
    ("name", "face"),
    [("Serif", "FONT_HERSHEY_COMPLEX"), ("Arial", "FONT_HERSHEY_SIMPLEX"),
     ("Monospace", "FONT_HERSHEY_PLAIN"), ("Sans Bold", "FONT_HERSHEY_DUPLEX"),
     ("Serif Italic", "FONT_HERSHEY_COMPLEX | FONT_ITALIC"),
     ("Comic Neue", "FONT_HERSHEY_SIMPLEX")],
)  # fmt: skip
def test_font_names_map_to_hershey_faces(name: str, face: str) -> None:
    assert hershey_font(name).name == face


def test_unknown_font_warns(caplog: pytest.LogCaptureFixture) -> None:
    hershey_font("Wingdings")
    assert "Wingdings" in caplog.text and "FONT_HERSHEY_SIMPLEX" in caplog.text


def test_style_comes_from_the_pipeline_config(tmp_path: Path) -> None:
    pipeline = load_app(tmp_path, "[tracker]\nenable=1\nll-lib-file=/x/libnvds_mot_iou.so\n"
                        "display-tracking-id=1\n[sink0]\nenable=1\ntype=1\n")  # fmt: skip
    s = OsdStyle.from_pipeline(pipeline)
    assert to_bgr(s.colors.border(0)) == GREEN and to_bgr(s.colors.border(1)) == RED
    assert to_bgr(s.colors.border(5)) == RED  # nvdsosd's default for unnamed classes
    assert s.border_width == 3 and s.display_tracking_id
    assert s.text_bg == (76, 76, 76) and s.text.font.name == "FONT_HERSHEY_COMPLEX"


def test_an_osd_that_is_not_enabled_draws_nothing(tmp_path: Path) -> None:
    """[osd] enable=0 is deepstream-app without nvdsosd: the sinks get the frames undrawn."""
    pipeline = load_app(tmp_path, "[sink0]\nenable=1\ntype=1\n")
    osd = pipeline.osd.model_copy(update={"enable": False})
    pipeline = pipeline.model_copy(update={"osd": osd})
    s = OsdStyle.from_pipeline(pipeline)
    assert not s.display_bbox and not s.display_text and s.clock is None
    image = np.zeros((120, 160, 3), np.uint8)
    boxes = np.array([[20, 30, 60, 80]], np.float64)
    OnScreenDisplay(s).draw(image, [obj(20, 30, 40, 50)], boxes)
    OnScreenDisplay(s).draw_clock(image)
    assert not image.any()
