"""KITTI detection labels: the format training and evaluation read and every converter writes.

A KITTI data set is a folder with `images/` and `labels/`; `labels/<stem>.txt` holds one line
per object for `images/<stem>.<ext>`:

    Mask 0 0 0 5 299 121 465 0 0 0 0 0 0 0
    type truncated occluded alpha left top right bottom height width length x y z rotation_y

Only the class and the 2D box matter to DetectNet_v2; the 3D fields are kept so that a file
read and written again is unchanged. TAO also accepts a 16th field (a detection score, as in
prediction files), and so do we.

The API training and the engine's accuracy gate use:

    dataset = KittiDataset("data/kitti")            # (image, label) pairs, sorted by name
    for sample in dataset:
        objects = read_label_file(sample.label)     # list[KittiObject]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from heron.evaluation.errors import DataFormatError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
"""Image files a KITTI folder may hold (compared case-insensitively)."""

FIELDS = (
    "type",
    "truncated",
    "occluded",
    "alpha",
    "bbox_left",
    "bbox_top",
    "bbox_right",
    "bbox_bottom",
    "dim_height",
    "dim_width",
    "dim_length",
    "loc_x",
    "loc_y",
    "loc_z",
    "rotation_y",
    "score",
)
"""KITTI field names in file order (the devkit's wording); errors name fields by these."""


def format_number(value: float) -> str:
    """2 decimals at most, no trailing zeros: 5.0 -> '5', 5.25 -> '5.25' (KITTI's precision)."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


@dataclass(frozen=True, slots=True)
class KittiObject:
    """One labelled object; checked when made (box ordered, numbers finite, ranges KITTI's).

    Coordinates are pixels of the image the label belongs to: (x1, y1) top left, (x2, y2)
    bottom right. Zero-size boxes are allowed here; converters drop them and `data check`
    warns about them.
    """

    name: str
    x1: float
    y1: float
    x2: float
    y2: float
    truncation: float = 0.0
    occlusion: int = 0
    alpha: float = 0.0
    dimensions: tuple[float, float, float] = (0.0, 0.0, 0.0)
    location: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rotation_y: float = 0.0
    score: float | None = None

    def __post_init__(self) -> None:
        if not self.name or any(c.isspace() for c in self.name):
            raise ValueError(
                f"[type] class name must be one word without spaces, got {self.name!r}"
            )
        numbers = {
            "bbox_left": self.x1,
            "bbox_top": self.y1,
            "bbox_right": self.x2,
            "bbox_bottom": self.y2,
            "truncated": self.truncation,
            "alpha": self.alpha,
            "rotation_y": self.rotation_y,
            **dict(zip(FIELDS[8:11], self.dimensions, strict=True)),
            **dict(zip(FIELDS[11:14], self.location, strict=True)),
        }
        for field, value in numbers.items():
            if not math.isfinite(value):
                raise ValueError(f"[{field}] must be a finite number, got {value}")
        if self.x2 < self.x1:
            raise ValueError(f"[bbox_right] right {self.x2:g} is left of left {self.x1:g}")
        if self.y2 < self.y1:
            raise ValueError(f"[bbox_bottom] bottom {self.y2:g} is above top {self.y1:g}")
        # KITTI's DontCare objects use -1 for both; everything else is 0..1 and 0..3.
        if not -1.0 <= self.truncation <= 1.0:
            raise ValueError(f"[truncated] must lie in [0, 1] (or -1), got {self.truncation:g}")
        if self.occlusion not in (-1, 0, 1, 2, 3):
            raise ValueError(f"[occluded] must be 0, 1, 2 or 3 (or -1), got {self.occlusion}")

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def box(self) -> tuple[float, float, float, float]:
        """(x1, y1, x2, y2) in pixels."""
        return (self.x1, self.y1, self.x2, self.y2)

    @classmethod
    def from_line(cls, text: str, *, file: Path | str = "<string>", line: int = 0) -> KittiObject:
        """Parse one label line (15 fields, or 16 with a score).

        Raises DataFormatError naming `file:line` and the offending field.
        """
        parts = text.split()
        if len(parts) not in (15, 16):
            raise DataFormatError(
                file,
                line,
                f"expected 15 fields (16 with a score), got {len(parts)}: {text.strip()!r}",
            )
        values: list[float] = []
        for field, token in zip(FIELDS[1:], parts[1:], strict=False):
            try:
                values.append(float(token))
            except ValueError:
                raise DataFormatError(
                    file, line, f"expected a number, got {token!r}", field
                ) from None
        occluded = values[1]
        if not occluded.is_integer():
            raise DataFormatError(file, line, f"expected an integer, got {parts[2]!r}", "occluded")
        try:
            return cls(
                name=parts[0],
                truncation=values[0],
                occlusion=int(occluded),
                alpha=values[2],
                x1=values[3],
                y1=values[4],
                x2=values[5],
                y2=values[6],
                dimensions=(values[7], values[8], values[9]),
                location=(values[10], values[11], values[12]),
                rotation_y=values[13],
                score=values[14] if len(values) == 15 else None,
            )
        except ValueError as e:
            field, _, message = str(e).partition("] ")
            raise DataFormatError(file, line, message, field.lstrip("[")) from None

    def to_line(self) -> str:
        """The label line (no newline); the score is written only when there is one."""
        numbers = [
            format_number(self.truncation),
            str(self.occlusion),
            format_number(self.alpha),
            *(format_number(v) for v in self.box),
            *(format_number(v) for v in self.dimensions),
            *(format_number(v) for v in self.location),
            format_number(self.rotation_y),
        ]
        if self.score is not None:
            numbers.append(f"{self.score:.4g}")
        return " ".join([self.name, *numbers])


def parse_label_text(text: str, file: Path | str) -> list[KittiObject]:
    """Every object in a label file's text; blank lines are skipped."""
    return [
        KittiObject.from_line(line, file=file, line=number)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]


def read_label_file(path: Path | str) -> list[KittiObject]:
    """Every object in a KITTI label file (empty for a negative image's empty file).

    Raises DataFormatError naming `path:line` and the field for the first bad line, or the file
    when it cannot be read as UTF-8 text.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataFormatError(path, 0, "label file does not exist") from None
    except UnicodeDecodeError as e:
        raise DataFormatError(path, 0, f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    return parse_label_text(text, path)


def write_label_file(path: Path | str, objects: Iterable[KittiObject]) -> None:
    """Write objects one per line (an empty file for none: TAO reads it as a negative image)."""
    lines = [obj.to_line() + "\n" for obj in objects]
    Path(path).write_text("".join(lines), encoding="utf-8")


def is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS


@dataclass(frozen=True, slots=True)
class KittiSample:
    """One image of a KITTI folder and its label file."""

    image: Path
    label: Path

    def read_objects(self) -> list[KittiObject]:
        return read_label_file(self.label)


class KittiDataset(Sequence[KittiSample]):
    """The (image, label) pairs of a KITTI folder, sorted by image name.

    `root/image_dir/<stem>.<ext>` pairs with `root/label_dir/<stem>.txt`. An image without a
    label file is an error (TAO fails on it too); run `heron data check` for a full report.
    Pass `images` to list only some images of the folder (a split fold, for example).
    """

    def __init__(
        self,
        root: Path | str,
        image_dir: str = "images",
        label_dir: str = "labels",
        *,
        images: Iterable[Path] | None = None,
    ) -> None:
        self.root = Path(root)
        self.image_dir = self.root / image_dir
        self.label_dir = self.root / label_dir
        if not self.image_dir.is_dir():
            raise DataFormatError(self.image_dir, 0, "KITTI image folder does not exist")
        if not self.label_dir.is_dir():
            raise DataFormatError(self.label_dir, 0, "KITTI label folder does not exist")
        if images is None:
            images = (p for p in self.image_dir.iterdir() if is_image(p))
        self._samples = [self._pair(Path(image)) for image in sorted(images)]

    def _pair(self, image: Path) -> KittiSample:
        label = self.label_for(image)
        if not label.is_file():
            raise DataFormatError(image, 0, f"image has no label file (expected {label})")
        return KittiSample(image=image, label=label)

    def label_for(self, image: Path | str) -> Path:
        """The label file that belongs to an image of this folder."""
        return self.label_dir / (Path(image).stem + ".txt")

    def __len__(self) -> int:
        return len(self._samples)

    def __iter__(self) -> Iterator[KittiSample]:
        return iter(self._samples)

    def __getitem__(self, index: int) -> KittiSample:  # type: ignore[override]
        return self._samples[index]

    def __repr__(self) -> str:
        return f"KittiDataset({str(self.root)!r}, {len(self)} images)"
