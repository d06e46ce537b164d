"""FDDB (Face Detection Data Set and Benchmark): faces as ellipses, in ten folds.

`FDDB-folds/FDDB-fold-01-ellipseList.txt` ... `-10-`, each a run of:

    2002/08/11/big/img_591                 image path, relative to originalPics/, no extension
    1                                      number of faces
    123.583300 85.549500 1.265839 269.693400 161.781200  1
    major_axis_radius minor_axis_radius angle(rad) center_x center_y detection_score

Each ellipse becomes its axis-aligned bounding box, class `face`. Images are looked up in
`originalPics/`, then `images/`, then the input folder itself, as `<path>.jpg`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

from heron.evaluation.errors import DataFormatError
from heron.training.data.counted_list import read_counted_list
from heron.training.data.sample import Box, Sample, make_box, name_from_relative, resolve_image

CLASS_NAME = "face"


def ellipse_box(
    major: float, minor: float, angle: float, cx: float, cy: float
) -> tuple[float, ...]:
    """The tight axis-aligned box of an ellipse whose major axis is `angle` rad from the x axis."""
    cos, sin = math.cos(angle), math.sin(angle)
    half_w = math.sqrt((major * cos) ** 2 + (minor * sin) ** 2)
    half_h = math.sqrt((major * sin) ** 2 + (minor * cos) ** 2)
    return (cx - half_w, cy - half_h, cx + half_w, cy + half_h)


def _ellipse(text: str, path: Path, line: int) -> Box:
    parts = text.split()
    if len(parts) not in (5, 6):
        raise DataFormatError(
            path, line, f"expected `major minor angle cx cy 1`, got {len(parts)} numbers"
        )
    major, minor, angle, cx, cy = (float(v) for v in parts[:5])
    if major <= 0 or minor <= 0:
        raise DataFormatError(path, line, f"ellipse radii must be positive, got {major}, {minor}")
    return make_box(CLASS_NAME, ellipse_box(major, minor, angle, cx, cy), path, line)


def read_fddb_file(path: Path, roots: list[Path]) -> Iterator[Sample]:
    """The samples of one FDDB ellipse-list file."""
    for entry in read_counted_list(path):
        boxes = tuple(_ellipse(text, path, line) for line, text in entry.rows)
        image = resolve_image(entry.image + ".jpg", roots)
        yield Sample(image, boxes, name_from_relative(entry.image), path)


def from_fddb(input_dir: Path, images_dir: Path | None = None) -> Iterator[Sample]:
    """Every image of every `*ellipseList.txt` fold file under `input_dir`, fold by fold."""
    files = sorted(input_dir.rglob("*ellipseList.txt"))
    if not files:
        raise DataFormatError(input_dir, 0, "no FDDB fold files (*ellipseList.txt) here")
    roots = (
        [images_dir]
        if images_dir
        else [input_dir / "originalPics", input_dir / "images", input_dir]
    )
    for path in files:
        yield from read_fddb_file(path, roots)
