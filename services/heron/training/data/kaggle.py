"""Kaggle "Medical Mask Dataset" (Humans in the Loop): one JSON file per image.

`annotations/<image file name>.json` beside `images/`:

    {"FileName": "1801.jpg", "NumOfAnno": 2,
     "Annotations": [{"isProtected": false, "ID": 1, "BoundingBox": [451, 186, 895, 697],
                      "classname": "face_no_mask", "Confidence": 1, "Attributes": {}}, ...]}

`BoundingBox` is [x1, y1, x2, y2] in pixels. Besides faces (`face_with_mask`, `face_no_mask`,
`face_with_mask_incorrect`, `face_other_covering`) the set labels accessories (`mask_surgical`,
`hat`, `sunglasses`, ...): those are left unmapped by the default class map and dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from heron.evaluation.errors import DataFormatError
from heron.training.data.sample import Box, Sample, make_box
from heron.training.data.voc import first_dir


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _entry_box(entry: Any, index: int, path: Path) -> Box:
    field = f"Annotations[{index}]"
    if not isinstance(entry, dict):
        raise DataFormatError(path, 0, f"expected an object, got {type(entry).__name__}", field)
    label = entry.get("classname")
    if not isinstance(label, str) or not label:
        raise DataFormatError(path, 0, "missing or empty 'classname'", f"{field}.classname")
    coords = entry.get("BoundingBox")
    if not isinstance(coords, list) or len(coords) != 4 or not all(_is_number(v) for v in coords):
        raise DataFormatError(
            path, 0, f"expected [x1, y1, x2, y2] numbers, got {coords!r}", f"{field}.BoundingBox"
        )
    return make_box(label, [float(v) for v in coords], path, 0, f"{field}.BoundingBox")


def read_kaggle_file(path: Path, images_dir: Path) -> Sample:
    """One per-image JSON file as a Sample."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataFormatError(path, e.lineno, f"invalid JSON: {e.msg} (column {e.colno})") from None
    except UnicodeDecodeError as e:
        raise DataFormatError(path, 0, f"not UTF-8 text ({e.reason})") from None
    if not isinstance(document, dict):
        raise DataFormatError(path, 1, f"expected a JSON object, got {type(document).__name__}")
    entries = document.get("Annotations")
    if not isinstance(entries, list):
        raise DataFormatError(path, 0, "missing 'Annotations' list", "Annotations")
    filename = document.get("FileName") or path.name.removesuffix(".json")
    if not isinstance(filename, str):
        raise DataFormatError(path, 0, f"expected a file name, got {filename!r}", "FileName")
    boxes = tuple(_entry_box(entry, i, path) for i, entry in enumerate(entries))
    image = images_dir / filename
    return Sample(image=image, boxes=boxes, name=image.stem, source=path)


def from_kaggle(input_dir: Path, images_dir: Path | None = None) -> Iterator[Sample]:
    """Every annotated image of a Medical Mask folder, in file-name order.

    Raises DataFormatError naming the file (and line, for invalid JSON) and the JSON path of a
    bad entry, e.g. `Annotations[3].BoundingBox`.
    """
    annotations = first_dir(input_dir, ("annotations",))
    images = images_dir or first_dir(input_dir, ("images",))
    files = sorted(annotations.glob("*.json"))
    if not files:
        raise DataFormatError(annotations, 0, "no per-image JSON files (*.json) here")
    for path in files:
        yield read_kaggle_file(path, images)
