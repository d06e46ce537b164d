"""`heron data check`: is a KITTI folder fit for training? Every finding names file:line."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from heron.core.config.diagnostics import Diagnostics, closest
from heron.evaluation.errors import DataFormatError
from heron.evaluation.kitti import IMAGE_EXTENSIONS, KittiObject, format_number, is_image


@dataclass
class CheckReport:
    root: Path
    images: int = 0
    labels: int = 0
    objects: Counter[str] = field(default_factory=Counter)
    diagnostics: Diagnostics = field(default_factory=Diagnostics)

    @property
    def ok(self) -> bool:
        return not self.diagnostics.errors


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image whose pixels all decode: a truncated or corrupt file is a
    DataFormatError (OpenCV would read what is there and fill the rest with grey)."""
    # PIL, and a JPEG decoded at 1/8 scale (DCT scaling): every byte is read, few pixels are
    # made. Imported here: not for the CLI.
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            size = image.size
            image.draft("RGB", (max(1, size[0] // 8), max(1, size[1] // 8)))
            image.load()
            return size
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        OSError,
        SyntaxError,
        ValueError,
    ) as e:
        # SyntaxError/ValueError: what some of PIL's decoders raise for a malformed file.
        raise DataFormatError(path, 0, f"unreadable image: {e}") from None


def _check_object(
    obj: KittiObject, size: tuple[int, int], classes: Collection[str] | None
) -> list[tuple[str, str, bool]]:
    """(message, field, is_error) for each problem of one object."""
    found: list[tuple[str, str, bool]] = []
    if classes is not None and obj.name not in classes:
        guess = closest(obj.name, classes)
        hint = f" (did you mean {guess!r}?)" if guess else ""
        found.append((f"unknown class {obj.name!r}{hint}; known: {sorted(classes)}", "type", True))
    width, height = size
    if obj.x1 < 0 or obj.y1 < 0 or obj.x2 > width or obj.y2 > height:
        box = ", ".join(format_number(v) for v in obj.box)
        found.append((f"box ({box}) lies outside the {width}x{height} image", "bbox", True))
    elif obj.width == 0 or obj.height == 0:
        found.append(("box has zero area", "bbox", False))
    return found


def _check_label(
    label: Path, image: Path, classes: Collection[str] | None, report: CheckReport
) -> None:
    try:
        size = image_size(image)
    except DataFormatError as e:
        report.diagnostics.extend([e.to_diagnostic()])
        return
    try:
        text = label.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        report.diagnostics.error(label, 0, f"not UTF-8 text ({e.reason})")
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = KittiObject.from_line(line, file=label, line=number)
        except DataFormatError as e:
            report.diagnostics.extend([e.to_diagnostic()])
            continue
        report.objects[obj.name] += 1
        for message, fld, is_error in _check_object(obj, size, classes):
            add = report.diagnostics.error if is_error else report.diagnostics.warn
            add(label, number, message, fld)


def check_kitti(
    root: Path,
    classes: Collection[str] | None = None,
    image_dir: str = "images",
    label_dir: str = "labels",
) -> CheckReport:
    """Check a KITTI folder: pairs complete, lines parse, boxes inside images, classes known.

    `classes=None` accepts any class name. Problems are collected, not raised, so that one run
    lists them all; `report.ok` is False when any is an error.
    """
    report = CheckReport(root=root)
    images_path, labels_path = root / image_dir, root / label_dir
    for folder in (images_path, labels_path):
        if not folder.is_dir():
            report.diagnostics.error(folder, 0, "folder does not exist")
    if not report.ok:
        return report
    images: dict[str, Path] = {}
    for path in sorted(images_path.iterdir()):
        if is_image(path) and images.setdefault(path.stem, path) != path:
            other = images[path.stem]
            report.diagnostics.error(
                path, 0, f"{other.name} has the same stem: one label for two images"
            )
    labels = {p.stem: p for p in sorted(labels_path.glob("*.txt"))}
    report.images, report.labels = len(images), len(labels)
    for stem, image in images.items():
        if stem not in labels:
            report.diagnostics.error(image, 0, f"no label file (expected {labels_path / stem}.txt)")
    for stem, label in labels.items():
        if stem not in images:
            expected = "|".join(e.lstrip(".") for e in IMAGE_EXTENSIONS)
            report.diagnostics.error(
                label, 0, f"no image for this label (expected {images_path / stem}.{{{expected}}})"
            )
            continue
        _check_label(label, images[stem], classes, report)
    return report
