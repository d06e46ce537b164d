"""What every converter yields: an image, its boxes in the source's pixels, and class names."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from heron.evaluation.errors import DataFormatError


@dataclass(frozen=True, slots=True)
class Box:
    """One labelled box in the source image's pixel coordinates (x1, y1 top left)."""

    label: str
    x1: float
    y1: float
    x2: float
    y2: float

    def __post_init__(self) -> None:
        if not self.label or any(c.isspace() for c in self.label):
            raise ValueError(f"class name must be one word without spaces, got {self.label!r}")
        if not all(math.isfinite(v) for v in (self.x1, self.y1, self.x2, self.y2)):
            raise ValueError(f"box coordinates must be finite, got {self.coords}")
        if self.x2 < self.x1 or self.y2 < self.y1:
            raise ValueError(f"box must have x2 >= x1 and y2 >= y1, got {self.coords}")

    @property
    def coords(self) -> tuple[float, float, float, float]:
        return (self.x1, self.y1, self.x2, self.y2)


def make_box(label: str, coords: Iterable[float], file: Path, line: int, field: str = "") -> Box:
    """A Box, or a DataFormatError naming where the bad box came from."""
    x1, y1, x2, y2 = coords
    try:
        return Box(label, x1, y1, x2, y2)
    except ValueError as e:
        raise DataFormatError(file, line, str(e), field) from None


@dataclass(frozen=True, slots=True)
class Sample:
    """One source image with its boxes.

    `name` is the stem the KITTI files get (unique within a conversion); `source` is the
    annotation file it came from, named in errors about the image.
    """

    image: Path
    boxes: tuple[Box, ...]
    name: str
    source: Path


def name_from_relative(path: str) -> str:
    """A flat, unique file stem for an image given by a path relative to a data set root.

    FDDB and WIDER name images by sub-folder ("2002/08/11/big/img_591"); the same file name
    can occur in two folders, so the folders stay in the name.
    """
    stem = path.strip().removesuffix(Path(path.strip()).suffix)
    return stem.strip("/").replace("/", "_").replace("\\", "_")


def resolve_image(relative: str, roots: Iterable[Path]) -> Path:
    """The first `root / relative` that exists, else the first candidate (reported later)."""
    candidates = [root / relative for root in roots]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return candidates[0]


def parse_class_map(text: str) -> dict[str, str]:
    """'with_mask=Mask,without_mask=No-Mask' -> {'with_mask': 'Mask', 'without_mask': 'No-Mask'}."""
    mapping: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        source, sep, target = (s.strip() for s in item.partition("="))
        if not sep or not source or not target:
            raise ValueError(f"class map entry {item!r} is not SOURCE=TARGET")
        if any(c.isspace() for c in source + target):
            raise ValueError(f"class map entry {item!r}: class names cannot contain spaces")
        if source in mapping and mapping[source] != target:
            raise ValueError(f"class {source!r} is mapped twice ({mapping[source]}, {target})")
        mapping[source] = target
    if not mapping:
        raise ValueError(f"class map {text!r} is empty")
    return mapping


def format_class_map(mapping: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in mapping.items())
