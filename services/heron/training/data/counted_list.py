"""The list-file shape FDDB and WIDER FACE share: an image path, a count, then that many rows.

    path/to/image
    2
    <row for face 1>
    <row for face 2>

The count is what goes wrong in hand-edited or truncated files, so it is checked here once:
too few rows (the file ends, or a path comes early) and too many rows (numbers where a path
should be) both name the line of the count.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from heron.evaluation.errors import DataFormatError


@dataclass(frozen=True)
class CountedEntry:
    """One image's block; `rows` are (1-based line, text)."""

    image: str
    count_line: int
    rows: list[tuple[int, str]]


def _numeric(text: str) -> bool:
    parts = text.split()
    try:
        [float(p) for p in parts]
    except ValueError:
        return False
    return len(parts) > 1


def _count(path: Path, lines: list[str], index: int, image: str) -> int:
    if index >= len(lines):
        raise DataFormatError(path, index, f"file is truncated after image path {image!r}")
    text = lines[index].strip()
    try:
        count = int(text)
    except ValueError:
        raise DataFormatError(path, index + 1, f"expected a face count, got {text!r}") from None
    if count < 0:
        raise DataFormatError(path, index + 1, f"face count must be >= 0, got {count}")
    return count


def read_counted_list(path: Path, *, placeholder_row: bool = False) -> Iterator[CountedEntry]:
    """The blocks of a counted list file, rows unparsed (each format parses its own).

    `placeholder_row`: a count of 0 is followed by one row of zeros (WIDER FACE's habit).
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise DataFormatError(path, 0, f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    index, previous = 0, (0, 0)  # previous block: (count line, count), to explain extra rows
    while index < len(lines):
        image = lines[index].strip()
        if not image:
            index += 1
            continue
        if _numeric(image):
            problem = (
                f"face count mismatch: line {previous[0]} announces {previous[1]} faces, "
                f"but more rows follow: {image!r}"
                if previous[0]
                else f"expected an image path, got {image!r}"
            )
            raise DataFormatError(path, index + 1, problem)
        count = _count(path, lines, index + 1, image)
        count_line, index = index + 2, index + 2
        if placeholder_row and count == 0 and index < len(lines) and _numeric(lines[index]):
            index += 1
        rows: list[tuple[int, str]] = []
        for _ in range(count):
            if index >= len(lines):
                raise DataFormatError(
                    path,
                    len(lines),
                    f"file is truncated: line {count_line} announces {count} faces, "
                    f"it ends after {len(rows)}",
                )
            if not _numeric(lines[index]):
                raise DataFormatError(
                    path,
                    index + 1,
                    f"face count mismatch: line {count_line} announces {count} faces, "
                    f"line {index + 1} is not a face row: {lines[index].strip()!r}",
                )
            rows.append((index + 1, lines[index]))
            index += 1
        previous = (count_line, count)
        yield CountedEntry(image, count_line, rows)
