"""`heron data convert | split` end to end through the real command."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from heron.cli.main import app
from typer.testing import CliRunner

from tests.training.data.conftest import FIXTURES
from tests.training.data.test_split import make_kitti

runner = CliRunner()


def invoke(*args: str | Path) -> tuple[int, str]:
    # Wide enough that rich wraps neither long tmp paths nor the error panel.
    result = runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "250"})
    return result.exit_code, result.output


def words(output: str) -> str:
    """The output's words on one line, without rich's panel borders."""
    return " ".join(output.replace("│", " ").split())


def test_convert_prints_the_per_class_summary(tmp_path: Path) -> None:
    code, output = invoke(
        "data", "convert", "-f", "voc", "-i", FIXTURES / "voc", "-o", tmp_path / "k"
    )
    assert code == 0, output
    assert "2 images at 960x544" in output
    rows = {line.split()[0]: line.split()[1:] for line in output.splitlines() if line.strip()}
    # source class -> KITTI class, boxes, written, clamped, small, unmapped
    # Lower case, as TAO's dataset_convert writes them and the committed spec reads them.
    assert rows["with_mask"] == ["mask", "2", "2", "1", "0", "0"]
    assert rows["without_mask"] == ["no-mask", "1", "1", "1", "0", "0"]
    assert rows["mask_weared_incorrect"] == ["no-mask", "1", "0", "0", "1", "0"]
    assert rows["hat"] == ["-", "1", "0", "0", "0", "1"]
    assert "written per class: mask: 2, no-mask: 1" in output
    assert sorted(p.name for p in (tmp_path / "k" / "labels").iterdir()) == ["a.txt", "b.txt"]


def test_convert_with_a_class_map_size_and_min_size(tmp_path: Path) -> None:
    code, output = invoke(
        "data", "convert", "-f", "wider", "-i", FIXTURES / "wider", "-o", tmp_path / "k",
        "--size", "480x272", "--class-map", "face=no-mask,invalid_face=no-mask", "--min-size", "1",
    )  # fmt: skip
    assert code == 0, output
    label = tmp_path / "k" / "labels" / "0--Parade_0_Parade_marchingband_1_5.txt"
    assert label.read_text().splitlines() == [
        "no-mask 0 0 0 10 20 40 60 0 0 0 0 0 0 0",
        "no-mask 0 0 0 100 50 101 51 0 0 0 0 0 0 0",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--size", "960by544"], "expected WIDTHxHEIGHT such as 960x544"),
        (
            ["--class-map", "with_mask:Mask"],
            "class map entry 'with_mask:Mask' is not SOURCE=TARGET",
        ),
        (["--format", "coco"], "'coco' is not one of"),
    ],
)
def test_convert_rejects_bad_options(tmp_path: Path, args: list[str], message: str) -> None:
    code, output = invoke(
        "data", "convert", "-f", "voc", "-i", FIXTURES / "voc", "-o", tmp_path, *args
    )
    assert code == 2
    assert message in words(output)


def test_convert_names_a_missing_image(tmp_path: Path) -> None:
    source = tmp_path / "voc"
    shutil.copytree(FIXTURES / "voc", source)
    (source / "images" / "b.jpg").unlink()
    code, output = invoke("data", "convert", "-f", "voc", "-i", source, "-o", tmp_path / "k")
    assert code == 1
    assert (
        f"{source / 'annotations' / 'b.xml'}: error: image {source / 'images' / 'b.jpg'} is missing"
        in output
    )


def test_split_a_folder(tmp_path: Path) -> None:
    root = make_kitti(tmp_path / "kitti", 10)
    code, output = invoke(
        "data", "split", root, "-o", tmp_path / "out", "--val-split", "30", "--seed", "7"
    )
    assert code == 0, output
    summary = json.loads((tmp_path / "out" / "partitions.json").read_text())
    assert (summary["mode"], summary["seed"], [f["images"] for f in summary["folds"]]) == (
        "random",
        7,
        [3, 7],
    )
    assert "0 (validation)" in output


SPEC = """\
kitti_config {
  root_directory_path: "kitti"
  image_dir_name: "images"
  label_dir_name: "labels"
  image_extension: ".jpg"
  partition_mode: "random"
  num_partitions: 2
  val_split: 25
  num_shards: 10
}
image_directory_path: "kitti"
"""


def test_split_from_a_dataset_convert_spec(tmp_path: Path) -> None:
    make_kitti(tmp_path / "kitti", 8)
    (tmp_path / "kitti" / "images" / "other.png").write_bytes(b"")  # filtered by image_extension
    (tmp_path / "spec.txt").write_text(SPEC)
    code, output = invoke("data", "split", "-d", tmp_path / "spec.txt", "-o", tmp_path / "out")
    assert code == 0, output
    summary = json.loads((tmp_path / "out" / "partitions.json").read_text())
    assert summary["root"] == str((tmp_path / "kitti").resolve())
    assert [f["images"] for f in summary["folds"]] == [2, 6]
    assert "spec.txt" not in output, "a clean spec prints no warnings"


def test_split_spec_warnings_are_printed(tmp_path: Path) -> None:
    make_kitti(tmp_path / "kitti", 4)
    (tmp_path / "spec.txt").write_text(
        SPEC + 'target_class_mapping { key: "Mask" value: "mask" }\n'
    )
    code, output = invoke("data", "split", "-d", tmp_path / "spec.txt", "-o", tmp_path / "out")
    assert code == 0, output
    assert "spec.txt:12: warning:" in output and "lower-cases class names" in output


def test_split_spec_errors_are_reported(tmp_path: Path) -> None:
    (tmp_path / "spec.txt").write_text(SPEC.replace("num_partitions: 2", "num_partitions: 3"))
    code, output = invoke("data", "split", "-d", tmp_path / "spec.txt", "-o", tmp_path / "out")
    assert code == 1
    assert "spec.txt:7: error: [kitti_config.num_partitions]" in output


def test_split_needs_exactly_one_source(tmp_path: Path) -> None:
    code, output = invoke("data", "split", "-o", tmp_path / "out")
    assert code == 2 and "give either KITTI_DIR or -d SPEC" in words(output)


def test_split_by_sequence(tmp_path: Path) -> None:
    root = make_kitti(tmp_path / "kitti", 6)
    sequences = {"s1": ["f000", "f001", "f002"], "s2": ["f003", "f004"], "s3": ["f005"]}
    (root / "kitti_seq_to_map.json").write_text(json.dumps(sequences))
    code, output = invoke(
        "data", "split", root, "-o", tmp_path / "out",
        "--partition-mode", "sequence", "--num-partitions", "2",
    )  # fmt: skip
    assert code == 0, output
    # TAO: s1 (3 frames) -> fold 0, s2 -> fold 1, s3 -> fold 0; then the folds are reversed.
    assert (tmp_path / "out" / "fold-0.txt").read_text().split() == [
        "images/f003.jpg",
        "images/f004.jpg",
    ]
    assert len((tmp_path / "out" / "fold-1.txt").read_text().split()) == 4


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    ("output", "images", "message"),
    [
        ("voc", None, "{tmp}/voc: is the input {tmp}/voc"),
        ("voc/kitti", None, "{tmp}/voc/kitti: lies inside the input folder {tmp}/voc"),
        # OUTPUT/images is what would be replaced, and it is where the images are read from
        ("kitti", "kitti/images", "{tmp}/kitti/images: is the input {tmp}/kitti/images"),
    ],
    ids=["same folder", "inside the input", "images inside the output"],
)
def test_convert_never_destroys_its_input(
    tmp_path: Path, output: str, images: str | None, message: str
) -> None:
    """Issue 13: `-i DIR -o DIR --overwrite` emptied DIR/images before reading it."""
    voc = tmp_path / "voc"
    shutil.copytree(FIXTURES / "voc", voc)
    extra: list[str | Path] = []
    if images is not None:  # the source images where the KITTI images would go
        shutil.move(voc / "images", tmp_path / images)
        extra = ["--images", tmp_path / images]
    before = _snapshot(tmp_path)
    out = tmp_path / output
    code, text = invoke("data", "convert", "-f", "voc", "-i", voc, "-o", out, "--overwrite", *extra)
    assert _snapshot(tmp_path) == before  # every source image and annotation, byte for byte
    assert code == 1
    assert text.splitlines() == ["error: --output " + message.format(tmp=tmp_path)]


def test_a_failed_convert_removes_only_what_it_created(tmp_path: Path) -> None:
    source = tmp_path / "voc"
    shutil.copytree(FIXTURES / "voc", source)
    (source / "images" / "b.jpg").unlink()
    code, _ = invoke("data", "convert", "-f", "voc", "-i", source, "-o", tmp_path / "new" / "k")
    assert code == 1
    assert not (tmp_path / "new").exists()


def test_a_failed_overwrite_keeps_the_earlier_conversion(tmp_path: Path) -> None:
    kitti = tmp_path / "kitti"
    (kitti / "split").mkdir(parents=True)
    (kitti / "split" / "fold-0.txt").write_text("images/a.jpg\n")
    assert invoke("data", "convert", "-f", "voc", "-i", FIXTURES / "voc", "-o", kitti)[0] == 0
    earlier = _snapshot(kitti)
    source = tmp_path / "voc"
    shutil.copytree(FIXTURES / "voc", source)
    (source / "images" / "b.jpg").write_bytes(b"not a jpeg")
    code, text = invoke("data", "convert", "-f", "voc", "-i", source, "-o", kitti, "--overwrite")
    assert code == 1 and "b.jpg: error: unreadable image" in text
    assert _snapshot(kitti) == earlier
    assert sorted(p.name for p in kitti.iterdir()) == ["images", "labels", "split"]  # no temp


def test_convert_without_overwrite_refuses_before_reading(tmp_path: Path) -> None:
    kitti = tmp_path / "kitti"
    (kitti / "labels").mkdir(parents=True)
    (kitti / "labels" / "old.txt").write_text("")
    code, text = invoke("data", "convert", "-f", "voc", "-i", tmp_path / "nowhere", "-o", kitti)
    assert code == 1 and "nowhere is not a folder" in text  # inputs are named first
    code, text = invoke("data", "convert", "-f", "voc", "-i", FIXTURES / "voc", "-o", kitti)
    assert code == 1
    assert text.splitlines() == [
        f"error: --output {kitti / 'labels'}: is not empty; pass --overwrite to replace it"
    ]


def test_split_replaces_its_folds_whole(tmp_path: Path) -> None:
    root = make_kitti(tmp_path / "kitti", 6)
    out = tmp_path / "out"
    out.mkdir()
    (out / "fold-7.txt").write_text("from an earlier split\n")
    (out / "notes.md").write_text("mine\n")
    code, output = invoke("data", "split", root, "-o", out)
    assert code == 0, output
    assert sorted(p.name for p in out.iterdir()) == [
        "fold-0.txt",
        "fold-1.txt",
        "notes.md",
        "partitions.json",
    ]
