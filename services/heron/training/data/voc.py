"""PASCAL VOC: one XML file per image (`annotations/*.xml` beside `images/`).

    <annotation>
      <filename>maksssksksss0.jpg</filename>
      <object>
        <name>with_mask</name>
        <bndbox><xmin>79</xmin><ymin>105</ymin><xmax>109</xmax><ymax>142</ymax></bndbox>
      </object>
    </annotation>

The VOC devkit's own folder names (`Annotations/`, `JPEGImages/`) work too. Coordinates are
taken as they are (pixels of the source image); boxes running past the edge are clamped later.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from xml.parsers import expat

from heron.evaluation.errors import DataFormatError
from heron.training.data.sample import Box, Sample, make_box

ANNOTATION_DIRS = ("annotations", "Annotations")
IMAGE_DIRS = ("images", "JPEGImages")
BOX_FIELDS = ("xmin", "ymin", "xmax", "ymax")


def first_dir(root: Path, names: tuple[str, ...]) -> Path:
    """The first `root/name` that is a folder, else `root` itself."""
    return next((root / n for n in names if (root / n).is_dir()), root)


def parse_xml_with_lines(path: Path) -> tuple[ET.Element, dict[ET.Element, int]]:
    """Parse XML into ElementTree elements and remember each element's line.

    ElementTree drops positions, and errors about a VOC object must say where it is, so the
    tree is built from expat's events (expat refuses entity-expansion attacks by itself).
    """
    parser = expat.ParserCreate()
    builder = ET.TreeBuilder()
    lines: dict[ET.Element, int] = {}

    def start(tag: str, attrs: dict[str, str]) -> None:
        lines[builder.start(tag, attrs)] = parser.CurrentLineNumber

    parser.StartElementHandler = start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(path.read_bytes(), True)
    except expat.ExpatError as e:
        message = f"not well-formed XML: {expat.ErrorString(e.code)}"
        raise DataFormatError(path, e.lineno, message) from None
    return builder.close(), lines


def _child(element: ET.Element, tag: str, path: Path, lines: dict[ET.Element, int]) -> ET.Element:
    """The child `<tag>` holding text; an error at the parent's line when there is none."""
    child = element.find(tag)
    if child is None or not (child.text or "").strip():
        where = lines.get(element, 0)
        raise DataFormatError(path, where, f"<{element.tag}> has no <{tag}>", tag)
    return child


def _box(obj: ET.Element, path: Path, lines: dict[ET.Element, int]) -> Box:
    label = (_child(obj, "name", path, lines).text or "").strip()
    bndbox = obj.find("bndbox")
    if bndbox is None:
        raise DataFormatError(path, lines[obj], f"<object> {label!r} has no <bndbox>", "bndbox")
    coords: list[float] = []
    for tag in BOX_FIELDS:
        child = _child(bndbox, tag, path, lines)
        text = (child.text or "").strip()
        try:
            coords.append(float(text))
        except ValueError:
            message = f"expected a number, got {text!r}"
            raise DataFormatError(path, lines[child], message, tag) from None
    return make_box(label, coords, path, lines[bndbox], "bndbox")


def read_voc_file(path: Path, images_dir: Path) -> Sample:
    """One VOC annotation file as a Sample (image resolved in `images_dir`)."""
    root, lines = parse_xml_with_lines(path)
    if root.tag != "annotation":
        raise DataFormatError(path, lines[root], f"expected <annotation>, got <{root.tag}>")
    filename_el = root.find("filename")
    filename = (filename_el.text or "").strip() if filename_el is not None else ""
    image = images_dir / filename if filename else images_dir / (path.stem + ".jpg")
    boxes = tuple(_box(obj, path, lines) for obj in root.iter("object"))
    return Sample(image=image, boxes=boxes, name=image.stem, source=path)


def from_voc(input_dir: Path, images_dir: Path | None = None) -> Iterator[Sample]:
    """Every annotated image of a VOC folder, in file-name order.

    Raises DataFormatError naming file:line for malformed XML, a missing <name>, <bndbox> or
    coordinate, or a coordinate that is not a number.
    """
    annotations = first_dir(input_dir, ANNOTATION_DIRS)
    images = images_dir or first_dir(input_dir, IMAGE_DIRS)
    files = sorted(annotations.glob("*.xml"))
    if not files:
        raise DataFormatError(annotations, 0, "no VOC annotation files (*.xml) here")
    for path in files:
        yield read_voc_file(path, images)
