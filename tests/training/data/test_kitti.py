"""KittiObject lines, label files and the KittiDataset listing."""

from __future__ import annotations

from pathlib import Path

import pytest
from heron.evaluation.errors import DataFormatError
from heron.evaluation.kitti import (
    KittiDataset,
    KittiObject,
    read_label_file,
    write_label_file,
)


def test_line_round_trips_and_keeps_3d_fields() -> None:
    line = "Car 0.5 2 -1.57 5 299 121.25 465 1.5 1.6 3.9 -2.1 1.7 10.25 1.5"
    obj = KittiObject.from_line(line)
    assert (obj.name, obj.box, obj.occlusion, obj.truncation) == (
        "Car",
        (5, 299, 121.25, 465),
        2,
        0.5,
    )
    assert obj.dimensions == (1.5, 1.6, 3.9) and obj.location == (-2.1, 1.7, 10.25)
    assert obj.to_line() == line


def test_writes_the_reference_line_exactly() -> None:
    obj = KittiObject("Mask", 5, 299, 121, 465)
    assert obj.to_line() == "Mask 0 0 0 5 299 121 465 0 0 0 0 0 0 0"
    assert KittiObject.from_line(obj.to_line()) == obj


def test_sixteenth_field_is_a_score() -> None:
    obj = KittiObject.from_line("Mask 0 0 0 5 299 121 465 0 0 0 0 0 0 0 0.875")
    assert obj.score == 0.875
    assert obj.to_line().endswith(" 0.875")


@pytest.mark.parametrize(
    ("line", "field", "expected"),
    [
        (
            "Mask 0 0 0 5 299 121 465 0 0 0 0 0 0",
            "",
            "expected 15 fields (16 with a score), got 14",
        ),
        ("Mask 0 0 0 5 oops 121 465 0 0 0 0 0 0 0", "bbox_top", "expected a number, got 'oops'"),
        ("Mask 0 0 0 50 299 12 465 0 0 0 0 0 0 0", "bbox_right", "right 12 is left of left 50"),
        ("Mask 0 0 0 5 299 121 200 0 0 0 0 0 0 0", "bbox_bottom", "bottom 200 is above top 299"),
        ("Mask 0 7 0 5 299 121 465 0 0 0 0 0 0 0", "occluded", "must be 0, 1, 2 or 3"),
        ("Mask 0 1.5 0 5 299 121 465 0 0 0 0 0 0 0", "occluded", "expected an integer"),
        ("Mask 2 0 0 5 299 121 465 0 0 0 0 0 0 0", "truncated", "must lie in [0, 1]"),
        ("Mask 0 0 0 nan 299 121 465 0 0 0 0 0 0 0", "bbox_left", "must be a finite number"),
        ("Mask 0 0 0 5 299 121 465 0 0 0 0 inf 0 0", "loc_y", "must be a finite number"),
    ],
)
def test_bad_lines_name_file_line_and_field(
    tmp_path: Path, line: str, field: str, expected: str
) -> None:
    path = tmp_path / "x.txt"
    path.write_text("Mask 0 0 0 1 2 3 4 0 0 0 0 0 0 0\n\n" + line + "\n")
    with pytest.raises(DataFormatError) as caught:
        read_label_file(path)
    error = caught.value
    assert (error.file, error.line, error.field) == (path, 3, field)
    assert expected in error.message
    assert str(error).startswith(f"{path}:3: error: ")


def test_label_file_round_trip_and_negative_image(tmp_path: Path) -> None:
    objects = [KittiObject("Mask", 1, 2, 3.5, 4), KittiObject("No-Mask", 0, 0, 960, 544)]
    write_label_file(tmp_path / "a.txt", objects)
    write_label_file(tmp_path / "empty.txt", [])
    assert read_label_file(tmp_path / "a.txt") == objects
    assert read_label_file(tmp_path / "empty.txt") == []
    assert (tmp_path / "empty.txt").read_text() == ""


def test_unreadable_label_files_are_named(tmp_path: Path) -> None:
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe Mask")
    with pytest.raises(DataFormatError, match=r"bin.txt: error: not UTF-8"):
        read_label_file(tmp_path / "bin.txt")
    with pytest.raises(DataFormatError, match=r"missing.txt: error: label file does not exist"):
        read_label_file(tmp_path / "missing.txt")


def _kitti(root: Path, stems: list[str], labels: list[str]) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for stem in stems:
        (root / "images" / stem).write_bytes(b"")
    for stem in labels:
        (root / "labels" / f"{stem}.txt").write_text("Mask 0 0 0 1 2 3 4 0 0 0 0 0 0 0\n")
    return root


def test_dataset_lists_sorted_pairs(tmp_path: Path) -> None:
    root = _kitti(tmp_path / "k", ["b.jpg", "a.png", "notes.md"], ["a", "b"])
    dataset = KittiDataset(root)
    assert [(s.image.name, s.label.name) for s in dataset] == [
        ("a.png", "a.txt"),
        ("b.jpg", "b.txt"),
    ]
    assert len(dataset) == 2 and dataset[1].image.name == "b.jpg"
    assert dataset[0].read_objects() == [KittiObject("Mask", 1, 2, 3, 4)]


def test_dataset_names_an_image_without_label(tmp_path: Path) -> None:
    root = _kitti(tmp_path / "k", ["a.jpg", "b.jpg"], ["a"])
    with pytest.raises(DataFormatError, match=r"b\.jpg: error: image has no label file"):
        KittiDataset(root)


def test_dataset_needs_its_folders(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="KITTI image folder does not exist"):
        KittiDataset(tmp_path)
