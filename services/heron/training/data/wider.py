"""WIDER FACE: `wider_face_split/wider_face_{train,val}_bbx_gt.txt`, a run of:

    0--Parade/0_Parade_marchingband_1_849.jpg     image path, relative to WIDER_<split>/images
    1                                             number of faces
    449 330 122 149 0 0 0 0 0 0                   x y w h blur expression illumination
                                                  invalid occlusion pose

An image with no face has count 0 followed by one line of zeros. Faces flagged `invalid`
get the class `invalid_face` (left unmapped by default, so dropped and counted); the others
are `face`. Images are looked up in `images/`, `WIDER_train/images/`, `WIDER_val/images/`,
then the input folder itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from heron.evaluation.errors import DataFormatError
from heron.training.data.counted_list import read_counted_list
from heron.training.data.sample import Box, Sample, make_box, name_from_relative, resolve_image

BOX_FIELDS = 10
INVALID = 7  # column of the `invalid` flag


def _face(text: str, path: Path, line: int) -> Box:
    parts = text.split()
    if len(parts) != BOX_FIELDS:
        raise DataFormatError(
            path,
            line,
            f"expected {BOX_FIELDS} fields `x y w h blur expression illumination invalid "
            f"occlusion pose`, got {len(parts)}: {text.strip()!r}",
        )
    try:
        values = [float(v) for v in parts]
    except ValueError:
        raise DataFormatError(path, line, f"expected numbers, got {text.strip()!r}") from None
    x, y, w, h = values[:4]
    label = "invalid_face" if values[INVALID] else "face"
    return make_box(label, (x, y, x + w, y + h), path, line)


def read_wider_file(path: Path, roots: list[Path]) -> Iterator[Sample]:
    """The samples of one WIDER FACE `*_bbx_gt.txt` file."""
    for entry in read_counted_list(path, placeholder_row=True):
        boxes = tuple(_face(text, path, line) for line, text in entry.rows)
        image = resolve_image(entry.image, roots)
        yield Sample(image, boxes, name_from_relative(entry.image), path)


def from_wider(input_dir: Path, images_dir: Path | None = None) -> Iterator[Sample]:
    """Every image of every `*_bbx_gt.txt` file under `input_dir`."""
    files = sorted(input_dir.rglob("*_bbx_gt.txt"))
    if not files:
        raise DataFormatError(input_dir, 0, "no WIDER FACE box files (*_bbx_gt.txt) here")
    roots = (
        [images_dir]
        if images_dir
        else [
            input_dir / "images",
            input_dir / "WIDER_train" / "images",
            input_dir / "WIDER_val" / "images",
            input_dir,
        ]
    )
    for path in files:
        yield from read_wider_file(path, roots)
