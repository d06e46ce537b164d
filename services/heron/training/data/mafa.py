"""MAFA (MAsked FAces, Ge et al. CVPR 2017): labels in MATLAB .mat files.

Training set, `LabelTrainAll.mat`, variable `label_train`: a 1×N struct array with fields
`orgImgName`, `imgName` and `label`, an M×21 matrix with one row per face:

    x y w h  |  eye x1 y1 x2 y2  |  occluder x y w h (relative to the face)
    occ_type (1 simple, 2 complex, 3 human body)  occ_degree (1-3)
    gender  race  orientation (1-5)  |  glasses x y w h (-1 when none)

Test set, `LabelTestAll.mat`, variable `LabelTest`: fields `name` and `label`, M×18:

    x y w h  face_type (1 masked, 2 unmasked, 3 invalid)  |  occluder x y w h
    occ_type  occ_degree  gender  race  orientation  |  glasses x y w h

Class names given to faces: `masked_face` (occluded by a mask, occ_type 1 or 2),
`body_occluded_face` (occ_type 3: a hand, an arm), `unmasked_face` and `invalid_face` (test
face_type 2 and 3). Images are looked up in `images/`, then `train-images/images/` or
`test-images/images/` (the archives' layout).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from heron.evaluation.errors import DataFormatError
from heron.training.data.sample import Box, Sample, make_box, resolve_image


class _Layout(NamedTuple):
    variable: str
    name_field: str
    name_position: int  # where the name sits in a record whose fields have no names
    columns: int
    images_subdir: str


TRAIN = _Layout("label_train", "imgName", 1, 21, "train-images/images")
TEST = _Layout("LabelTest", "name", 0, 18, "test-images/images")


def _face_class(row: Any, layout: _Layout) -> str:
    if layout is TEST:
        face_type, occ_type = int(row[4]), int(row[9])
        if face_type == 2:
            return "unmasked_face"
        if face_type != 1:
            return "invalid_face"
    else:
        occ_type = int(row[12])
    return "body_occluded_face" if occ_type == 3 else "masked_face"


def _field(record: Any, name: str, position: int) -> Any:
    names = record.dtype.names
    if names is None:
        return record[position]
    return record[name] if name in names else None


def _record_sample(
    record: Any, index: int, layout: _Layout, path: Path, roots: list[Path]
) -> Sample:
    import numpy as np

    where = f"{layout.variable}[{index}]"
    raw_name = _field(record, layout.name_field, layout.name_position)
    name = (
        str(np.asarray(raw_name).ravel()[0]) if raw_name is not None and np.size(raw_name) else ""
    )
    if not name:
        raise DataFormatError(path, 0, "record has no image name", f"{where}.{layout.name_field}")
    raw_label = _field(record, "label", layout.name_position + 1)
    labels = np.atleast_2d(np.asarray(raw_label if raw_label is not None else [], dtype=float))
    if labels.size and labels.shape[1] != layout.columns:
        raise DataFormatError(
            path,
            0,
            f"expected {layout.columns} columns per face, got {labels.shape[1]}",
            f"{where}.label",
        )
    boxes: list[Box] = []
    for row in labels if labels.size else []:
        x, y, w, h = (float(v) for v in row[:4])
        boxes.append(
            make_box(_face_class(row, layout), (x, y, x + w, y + h), path, 0, f"{where}.label")
        )
    image = resolve_image(name, roots)
    return Sample(image=image, boxes=tuple(boxes), name=Path(name).stem, source=path)


def read_mafa_file(path: Path, images_dir: Path | None = None) -> Iterator[Sample]:
    """The samples of one MAFA .mat label file (train or test layout, told by its variable)."""
    import scipy.io

    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as e:  # scipy raises half a dozen types on garbage; all mean the same here
        raise DataFormatError(path, 0, f"not a readable MATLAB .mat file: {e}") from None
    layout = next((lay for lay in (TRAIN, TEST) if lay.variable in mat), None)
    if layout is None:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise DataFormatError(
            path,
            0,
            f"expected a variable 'label_train' (LabelTrainAll.mat) or 'LabelTest' "
            f"(LabelTestAll.mat), found {found}",
        )
    # The .mat may sit at the top of the input folder or in MAFA-Label-Train/ beside the images.
    roots = (
        [images_dir]
        if images_dir
        else [
            base / sub
            for base in (path.parent, path.parent.parent)
            for sub in ("images", layout.images_subdir)
        ]
    )
    records = mat[layout.variable].ravel()
    for index, record in enumerate(records):
        yield _record_sample(record, index, layout, path, roots)


def from_mafa(input_dir: Path, images_dir: Path | None = None) -> Iterator[Sample]:
    """Every face of every MAFA .mat file under `input_dir`, file by file."""
    files = sorted(input_dir.rglob("*.mat"))
    if not files:
        raise DataFormatError(input_dir, 0, "no MAFA label files (*.mat) here")
    for path in files:
        yield from read_mafa_file(path, images_dir)
