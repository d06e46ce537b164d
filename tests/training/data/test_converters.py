"""Each converter on its fixture: exact KITTI boxes after resize to 960x544 and clamping."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import cv2
import pytest
from heron.core.outputs import OutputPathError
from heron.training.data.convert import BoxCounts, convert_samples, transform_boxes
from heron.training.data.fddb import ellipse_box
from heron.training.data.formats import FORMATS, SourceFormat
from heron.training.data.sample import Box

from tests.training.data.conftest import FIXTURES

ZEROS = "0 0 0 0 0 0 0"

# Source boxes (in the fixture's own pixels) as each reader must yield them.
EXPECTED_SOURCE = {
    SourceFormat.VOC: {
        "a": [
            ("with_mask", 10, 20, 40, 60),
            ("without_mask", 200, 100, 250, 140),
            ("mask_weared_incorrect", 100, 50, 100.5, 70),
            ("hat", 0, 0, 20, 20),
        ],
        "b": [("with_mask", -3, 10, 50, 100)],
    },
    SourceFormat.KAGGLE: {
        "c": [
            ("face_with_mask", 10, 20, 40, 60),
            ("face_no_mask", 230, 126, 250, 146),
            ("hat", 5, 5, 30, 15),
        ],
        "d": [("face_with_mask_incorrect", 100, 100, 150, 160)],
    },
    SourceFormat.MAFA: {
        "test_00000001": [("unmasked_face", 50, 30, 70, 55), ("invalid_face", 100, 60, 130, 90)],
        "train_00000001": [
            ("masked_face", 10, 20, 40, 60),
            ("body_occluded_face", 150, 30, 190, 70),
        ],
        "train_00000002": [("masked_face", 400, 200, 500, 300)],
    },
    SourceFormat.FDDB: {
        "2002_08_11_big_img_591": [("face", 80, 48, 160, 88)],
        "2002_08_26_big_img_265": [("face", 50, 20, 70, 60), ("face", 220, 120, 240, 140)],
    },
    SourceFormat.WIDER: {
        "0--Parade_0_Parade_marchingband_1_5": [
            ("face", 10, 20, 40, 60),
            ("face", 100, 50, 101, 51),
        ],
        "1--Handshaking_1_Handshaking_Handshaking_1_35": [],
        "2--Demonstration_2_Demonstration_Protesters_2_11": [
            ("invalid_face", 200, 10, 230, 40),
            ("face", 220, 120, 260, 150),
        ],
    },
}

# KITTI label lines written with the format's default class map and --min-size 4.
EXPECTED_LABELS = {
    SourceFormat.VOC: {
        "a": ["mask 0 0 0 40 80 160 240", "no-mask 0 0 0 800 400 960 544"],
        "b": ["mask 0 0 0 0 20 100 200"],
    },
    SourceFormat.KAGGLE: {
        "c": ["mask 0 0 0 40 80 160 240", "no-mask 0 0 0 920 504 960 544"],
        "d": ["no-mask 0 0 0 200 200 300 320"],
    },
    SourceFormat.MAFA: {
        "test_00000001": ["no-mask 0 0 0 200 120 280 220"],
        "train_00000001": ["mask 0 0 0 40 80 160 240"],
        "train_00000002": ["mask 0 0 0 800 400 960 544"],
    },
    SourceFormat.FDDB: {
        "2002_08_11_big_img_591": ["face 0 0 0 320 192 640 352"],
        "2002_08_26_big_img_265": ["face 0 0 0 200 80 280 240", "face 0 0 0 880 480 960 544"],
    },
    SourceFormat.WIDER: {
        "0--Parade_0_Parade_marchingband_1_5": ["face 0 0 0 20 40 80 120"],
        "1--Handshaking_1_Handshaking_Handshaking_1_35": [],
        "2--Demonstration_2_Demonstration_Protesters_2_11": ["face 0 0 0 880 480 960 544"],
    },
}

# (clamped, too small, unmapped) per format.
EXPECTED_DROPS = {
    SourceFormat.VOC: (
        {"without_mask": 1, "with_mask": 1},
        {"mask_weared_incorrect": 1},
        {"hat": 1},
    ),
    SourceFormat.KAGGLE: ({"face_no_mask": 1}, {}, {"hat": 1}),
    SourceFormat.MAFA: ({"masked_face": 1}, {}, {"body_occluded_face": 1, "invalid_face": 1}),
    SourceFormat.FDDB: ({"face": 1}, {}, {}),
    SourceFormat.WIDER: ({"face": 1}, {"face": 1}, {"invalid_face": 1}),
}

FORMATS_UNDER_TEST = list(SourceFormat)


@pytest.mark.parametrize("fmt", FORMATS_UNDER_TEST)
def test_reader_yields_source_boxes(fmt: SourceFormat) -> None:
    samples = {s.name: s for s in FORMATS[fmt].read(FIXTURES / fmt.value, None)}
    got = {
        name: [(b.label, *(round(v, 6) for v in b.coords)) for b in s.boxes]
        for name, s in samples.items()
    }
    assert got == EXPECTED_SOURCE[fmt]
    assert all(s.image.is_file() for s in samples.values()), "every image is found"


@pytest.mark.parametrize("fmt", FORMATS_UNDER_TEST)
def test_convert_writes_scaled_clamped_boxes(fmt: SourceFormat, tmp_path: Path) -> None:
    info = FORMATS[fmt]
    samples = list(info.read(FIXTURES / fmt.value, None))
    report = convert_samples(samples, tmp_path, class_map=info.default_class_map)
    labels = {
        p.stem: [line.removesuffix(" " + ZEROS) for line in p.read_text().splitlines()]
        for p in (tmp_path / "labels").glob("*.txt")
    }
    assert labels == EXPECTED_LABELS[fmt]
    for name in labels:
        image = cv2.imread(str(tmp_path / "images" / f"{name}.jpg"))
        assert image is not None and image.shape == (544, 960, 3)
    clamped, too_small, unmapped = EXPECTED_DROPS[fmt]
    assert (report.boxes.clamped, report.boxes.too_small, report.boxes.unmapped) == (
        clamped,
        too_small,
        unmapped,
    )
    assert report.images == len(labels)
    assert report.negative_images == sum(1 for lines in labels.values() if not lines)


def test_transform_clamps_drops_and_counts() -> None:
    boxes = [
        Box("with_mask", -10, -10, 50, 50),  # clamped at the top-left corner
        Box("with_mask", 90, 90, 130, 130),  # clamped at the bottom-right corner
        Box("with_mask", 120, 120, 140, 140),  # entirely outside: nothing left, dropped
        Box("without_mask", 10, 10, 11.9, 40),  # 1.9 px wide: under min_size 2
        Box("without_mask", 10, 10, 12, 40),  # exactly 2 px: kept
        Box("other", 0, 0, 10, 10),
    ]
    objects, counts = transform_boxes(
        boxes, (100, 100), (100, 100), {"with_mask": "Mask", "without_mask": "No-Mask"}, 2
    )
    assert [(o.name, o.box) for o in objects] == [
        ("Mask", (0, 0, 50, 50)),
        ("Mask", (90, 90, 100, 100)),
        ("No-Mask", (10, 10, 12, 40)),
    ]
    expected = BoxCounts()
    expected.seen.update({"with_mask": 3, "without_mask": 2, "other": 1})
    expected.written.update({"with_mask": 2, "without_mask": 1})
    expected.clamped.update({"with_mask": 2})
    expected.too_small.update({"with_mask": 1, "without_mask": 1})
    expected.unmapped.update({"other": 1})
    assert counts == expected


def test_scaling_is_per_axis() -> None:
    objects, _ = transform_boxes([Box("a", 10, 10, 20, 20)], (100, 50), (960, 544), {"a": "A"}, 0)
    assert objects[0].box == (96, 108.8, 192, 217.6)


@pytest.mark.parametrize(
    ("angle", "expected"),
    [(0.0, (80, 90, 120, 110)), (1.5707963267948966, (90, 80, 110, 120))],
)
def test_ellipse_box_follows_the_major_axis(angle: float, expected: tuple[float, ...]) -> None:
    assert ellipse_box(20, 10, angle, 100, 100) == pytest.approx(expected)


def test_rotated_ellipse_box_touches_the_ellipse() -> None:
    major, minor, angle = 30.0, 10.0, 0.7
    x1, y1, x2, y2 = ellipse_box(major, minor, angle, 0, 0)
    ts = [i * 2 * math.pi / 20000 for i in range(20000)]
    xs = [major * math.cos(t) * math.cos(angle) - minor * math.sin(t) * math.sin(angle) for t in ts]
    ys = [major * math.cos(t) * math.sin(angle) + minor * math.sin(t) * math.cos(angle) for t in ts]
    assert (x1, y1, x2, y2) == pytest.approx((min(xs), min(ys), max(xs), max(ys)), abs=1e-3)


def test_refuses_to_mix_with_an_earlier_conversion(tmp_path: Path) -> None:
    info = FORMATS[SourceFormat.VOC]
    samples = list(info.read(FIXTURES / "voc", None))
    convert_samples(samples, tmp_path, class_map=info.default_class_map)
    with pytest.raises(FileExistsError, match="is not empty"):
        convert_samples(samples, tmp_path, class_map=info.default_class_map)
    report = convert_samples(
        samples[:1], tmp_path, class_map=info.default_class_map, overwrite=True
    )
    assert report.images == 1 and len(list((tmp_path / "labels").iterdir())) == 1


def test_never_replaces_the_folder_it_reads_images_from(tmp_path: Path) -> None:
    # The library guards itself too: callers other than the CLI (the demo) pass overwrite=True.
    source = tmp_path / "voc"
    shutil.copytree(FIXTURES / "voc", source)
    samples = list(FORMATS[SourceFormat.VOC].read(source, None))
    with pytest.raises(OutputPathError, match=r"images: is the input .*voc/images"):
        convert_samples(samples, source, class_map={}, overwrite=True)
    assert sorted(p.name for p in (source / "images").iterdir()) == ["a.jpg", "b.jpg"]
