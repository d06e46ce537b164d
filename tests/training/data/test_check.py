"""`heron data check` on a good folder and on folders broken one way each."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from heron.cli.main import app
from heron.training.data.check import check_kitti
from heron.training.data.convert import convert_samples
from heron.training.data.formats import FORMATS, SourceFormat
from typer.testing import CliRunner

from tests.training.data.conftest import FIXTURES

CLASSES = ["mask", "no-mask"]


@pytest.fixture
def kitti(tmp_path: Path) -> Path:
    """The VOC fixture converted: a/b images with 2 + 1 objects, 960x544."""
    info = FORMATS[SourceFormat.VOC]
    root = tmp_path / "kitti"
    convert_samples(list(info.read(FIXTURES / "voc", None)), root, class_map=info.default_class_map)
    return root


def test_good_folder_passes(kitti: Path) -> None:
    report = check_kitti(kitti, CLASSES)
    assert report.ok and not report.diagnostics.items
    assert (report.images, report.labels) == (2, 2)
    assert report.objects == {"mask": 2, "no-mask": 1}


def _append(line: str) -> Callable[[Path], None]:
    def breaker(root: Path) -> None:
        with (root / "labels" / "a.txt").open("a") as f:
            f.write(line + "\n")

    return breaker


def _remove_label(root: Path) -> None:
    (root / "labels" / "b.txt").unlink()


def _orphan_label(root: Path) -> None:
    (root / "labels" / "c.txt").write_text("")


def _corrupt_image(root: Path) -> None:
    (root / "images" / "b.jpg").write_bytes(b"not a jpeg")


BROKEN = [
    ("missing label", _remove_label, "images/b.jpg", 0, "no label file (expected"),
    ("orphan label", _orphan_label, "labels/c.txt", 0, "no image for this label"),
    ("bad line", _append("mask 0 0 0 1 2 3"), "labels/a.txt", 3, "expected 15 fields"),
    (
        "not a number",
        _append("mask 0 0 0 1 2 x 4 0 0 0 0 0 0 0"),
        "labels/a.txt",
        3,
        "[bbox_right]",
    ),
    (
        "box outside",
        _append("mask 0 0 0 900 500 961 544 0 0 0 0 0 0 0"),
        "labels/a.txt",
        3,
        "box (900, 500, 961, 544) lies outside the 960x544 image",
    ),
    (
        "negative box",
        _append("mask 0 0 0 -1 0 10 10 0 0 0 0 0 0 0"),
        "labels/a.txt",
        3,
        "lies outside",
    ),
    (
        "unknown class",
        _append("maks 0 0 0 1 2 3 4 0 0 0 0 0 0 0"),
        "labels/a.txt",
        3,
        "unknown class 'maks' (did you mean 'mask'?)",
    ),
    ("unreadable image", _corrupt_image, "images/b.jpg", 0, "unreadable image"),
]


@pytest.mark.parametrize(
    ("breaker", "file", "line", "message"), [c[1:] for c in BROKEN], ids=[c[0] for c in BROKEN]
)
def test_broken_folder_names_file_and_line(
    kitti: Path, breaker: Callable[[Path], None], file: str, line: int, message: str
) -> None:
    breaker(kitti)
    report = check_kitti(kitti, CLASSES)
    assert not report.ok
    [error] = report.diagnostics.errors
    assert (error.file, error.line) == (kitti / file, line)
    assert message in str(error)


def test_zero_area_box_is_a_warning(kitti: Path) -> None:
    _append("mask 0 0 0 5 5 5 10 0 0 0 0 0 0 0")(kitti)
    report = check_kitti(kitti, CLASSES)
    assert report.ok
    [warning] = report.diagnostics.warnings
    assert (warning.line, warning.message) == (3, "box has zero area")


def test_any_class_accepted_without_a_class_list(kitti: Path) -> None:
    _append("Person 0 0 0 1 2 3 4 0 0 0 0 0 0 0")(kitti)
    assert check_kitti(kitti).ok


def test_every_problem_is_reported_in_one_run(kitti: Path) -> None:
    _append("maks 0 0 0 1 2 3 4 0 0 0 0 0 0 0")(kitti)
    _append("mask 0 0 0 1 2")(kitti)
    _remove_label(kitti)
    lines = sorted((d.file.name, d.line) for d in check_kitti(kitti, CLASSES).diagnostics.errors)
    assert lines == [("a.txt", 3), ("a.txt", 4), ("b.jpg", 0)]


def test_missing_folders(tmp_path: Path) -> None:
    report = check_kitti(tmp_path)
    assert [d.file.name for d in report.diagnostics.errors] == ["images", "labels"]


def test_cli_exit_codes_and_messages(kitti: Path) -> None:
    runner = CliRunner()
    good = runner.invoke(app, ["data", "check", str(kitti), "--classes", "mask,no-mask"])
    assert good.exit_code == 0, good.output
    assert "ok: 0 errors" in good.output
    _append("maks 0 0 0 1 2 3 4 0 0 0 0 0 0 0")(kitti)
    bad = runner.invoke(
        app, ["data", "check", str(kitti), "--classes", "mask,no-mask"], terminal_width=200
    )
    assert bad.exit_code == 1
    assert f"{kitti / 'labels' / 'a.txt'}:3: error: [type] unknown class 'maks'" in bad.output
    assert "FAILED: 1 errors" in bad.output
