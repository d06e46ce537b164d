"""Malformed input for every parser: a DataFormatError naming the file (and line, field)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import scipy.io
from heron.evaluation.errors import DataFormatError
from heron.training.data.formats import FORMATS, SourceFormat

from tests.training.data.conftest import FIXTURES

VOC = "annotations/a.xml"
KAGGLE = "annotations/c.jpg.json"
FDDB = "FDDB-folds/FDDB-fold-01-ellipseList.txt"
WIDER = "wider_face_split/wider_face_train_bbx_gt.txt"
MAFA = "MAFA-Label-Train/LabelTrainAll.mat"


def text(content: str) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        path.write_text(content)

    return write


def mat(variables: dict[str, object]) -> Callable[[Path], None]:
    return lambda path: scipy.io.savemat(path, variables)


def _train_record(label: np.ndarray) -> np.ndarray:
    array = np.zeros((1, 1), dtype=[("orgImgName", object), ("imgName", object), ("label", object)])
    array[0, 0]["orgImgName"], array[0, 0]["imgName"], array[0, 0]["label"] = (
        "o.jpg",
        "x.jpg",
        label,
    )
    return array


class Case(NamedTuple):
    fmt: str
    relative: str  # the file of the fixture that gets broken
    breaker: Callable[[Path], None]
    line: int
    field: str
    message: str


CASES = [
    Case(
        "voc",
        VOC,
        text("<annotation>\n  <object>\n    <name>a</name>\n</annotation>\n"),
        4,
        "",
        "not well-formed XML: mismatched tag",
    ),
    Case(
        "voc",
        VOC,
        text(
            "<annotation>\n  <filename>a.jpg</filename>\n  <object>\n    <name>with_mask</name>\n"
            "  </object>\n</annotation>\n"
        ),
        3,
        "bndbox",
        "<object> 'with_mask' has no <bndbox>",
    ),
    Case(
        "voc",
        VOC,
        text("<annotation>\n<object>\n<bndbox><xmin>1</xmin></bndbox>\n</object>\n</annotation>"),
        2,
        "name",
        "<object> has no <name>",
    ),
    Case(
        "voc",
        VOC,
        text(
            "<annotation><object><name>m</name><bndbox>\n<xmin>1</xmin>\n<ymin>one</ymin>\n"
            "<xmax>3</xmax><ymax>4</ymax></bndbox></object></annotation>"
        ),
        3,
        "ymin",
        "expected a number, got 'one'",
    ),
    Case(
        "voc",
        VOC,
        text(
            "<annotation><object><name>m</name><bndbox>\n<xmin>1</xmin><ymin>2</ymin>\n"
            "</bndbox></object></annotation>"
        ),
        1,
        "xmax",
        "<bndbox> has no <xmax>",
    ),
    Case("voc", VOC, text("<annotations/>"), 1, "", "expected <annotation>, got <annotations>"),
    Case(
        "kaggle",
        KAGGLE,
        text('{"Annotations": [\n  {"classname": "x",,}\n]}'),
        2,
        "",
        "invalid JSON: Expecting property name",
    ),
    Case(
        "kaggle",
        KAGGLE,
        text('{"FileName": "c.jpg", "Annotations": [{"classname": "face_no_mask"}]}'),
        0,
        "Annotations[0].BoundingBox",
        "expected [x1, y1, x2, y2] numbers, got None",
    ),
    Case(
        "kaggle",
        KAGGLE,
        text('{"Annotations": [{"classname": "m", "BoundingBox": [50, 0, 10, 10]}]}'),
        0,
        "Annotations[0].BoundingBox",
        "box must have x2 >= x1",
    ),
    Case(
        "kaggle",
        KAGGLE,
        text('{"Annotations": [{"BoundingBox": [0, 0, 10, 10]}]}'),
        0,
        "Annotations[0].classname",
        "missing or empty 'classname'",
    ),
    Case(
        "kaggle",
        KAGGLE,
        text('{"FileName": "c.jpg"}'),
        0,
        "Annotations",
        "missing 'Annotations' list",
    ),
    Case("kaggle", KAGGLE, text("[1, 2]"), 1, "", "expected a JSON object, got list"),
    Case(
        "fddb",
        FDDB,
        text("img_1\n2\n10 5 0 50 50 1\nimg_2\n1\n10 5 0 50 50 1\n"),
        4,
        "",
        "face count mismatch: line 2 announces 2 faces, line 4 is not a face row: 'img_2'",
    ),
    Case(
        "fddb",
        FDDB,
        text("img_1\n3\n10 5 0 50 50 1\n10 5 0 60 50 1\n"),
        4,
        "",
        "file is truncated: line 2 announces 3 faces, it ends after 2",
    ),
    Case(
        "fddb",
        FDDB,
        text("img_1\n1\n10 5 0 50 50 1\n10 5 0 60 50 1\nimg_2\n0\n"),
        4,
        "",
        "face count mismatch: line 2 announces 1 faces, but more rows follow: '10 5 0 60 50 1'",
    ),
    Case(
        "fddb", FDDB, text("img_1\n1\n10 5 0 50\n"), 3, "", "expected `major minor angle cx cy 1`"
    ),
    Case("fddb", FDDB, text("10 5 0 50 50 1\n"), 1, "", "expected an image path, got '10 5 0"),
    Case(
        "wider",
        WIDER,
        text("a/b.jpg\n1\n1 2 3 4 0 0 0 0 0 0\n5 6 7 8 0 0 0 0 0 0\n"),
        4,
        "",
        "face count mismatch: line 2 announces 1 faces, but more rows follow",
    ),
    Case(
        "fddb",
        FDDB,
        text("img_1\ntwo\n10 5 0 50 50 1\n"),
        2,
        "",
        "expected a face count, got 'two'",
    ),
    Case(
        "fddb", FDDB, text("img_1\n1\n-10 5 0 50 50 1\n"), 3, "", "ellipse radii must be positive"
    ),
    Case(
        "wider",
        WIDER,
        text("a/b.jpg\n3\n1 2 3 4 0 0 0 0 0 0\n"),
        3,
        "",
        "file is truncated: line 2 announces 3 faces, it ends after 1",
    ),
    Case("wider", WIDER, text("a/b.jpg"), 1, "", "file is truncated after image path 'a/b.jpg'"),
    Case("wider", WIDER, text("a/b.jpg\n1\n1 2 3 4 0 0 0 0 0\n"), 3, "", "expected 10 fields"),
    Case(
        "wider", WIDER, text("a/b.jpg\n1\n1 2 -3 4 0 0 0 0 0 0\n"), 3, "", "box must have x2 >= x1"
    ),
    Case("wider", WIDER, text("a/b.jpg\nmany\n"), 2, "", "expected a face count, got 'many'"),
    Case(
        "mafa",
        MAFA,
        mat({"labels": np.zeros((2, 21))}),
        0,
        "",
        "expected a variable 'label_train' (LabelTrainAll.mat) or 'LabelTest' (LabelTestAll.mat), "
        "found ['labels']",
    ),
    Case(
        "mafa",
        MAFA,
        mat({"label_train": _train_record(np.zeros((1, 20)))}),
        0,
        "label_train[0].label",
        "expected 21 columns per face, got 20",
    ),
    Case("mafa", MAFA, text("not a mat file at all"), 0, "", "not a readable MATLAB .mat file"),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c.fmt}-{i}" for i, c in enumerate(CASES)])
def test_malformed_input_names_file_line_and_field(tmp_path: Path, case: Case) -> None:
    root = tmp_path / case.fmt
    shutil.copytree(FIXTURES / case.fmt, root)
    path = root / case.relative
    case.breaker(path)
    with pytest.raises(DataFormatError) as caught:
        list(FORMATS[SourceFormat(case.fmt)].read(root, None))
    error = caught.value
    assert (error.file, error.line, error.field) == (path, case.line, case.field), str(error)
    assert case.message in error.message
    assert str(path) in str(error)


@pytest.mark.parametrize("fmt", list(SourceFormat))
def test_a_folder_without_annotations_is_named(tmp_path: Path, fmt: SourceFormat) -> None:
    with pytest.raises(DataFormatError) as caught:
        list(FORMATS[fmt].read(tmp_path, None))
    assert caught.value.file in (tmp_path, tmp_path / "annotations")
    assert "here" in caught.value.message
