"""Splitting a KITTI folder into folds as TAO's dataset_convert does, and reading them back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from heron.evaluation.errors import DataFormatError
from heron.evaluation.kitti import KittiObject, write_label_file
from heron.training.data.split import (
    SplitSettings,
    partition_random,
    partition_sequence,
    read_partitions,
    split_dataset,
    training_datasets,
    write_partitions,
)
from pydantic import ValidationError


def make_kitti(root: Path, count: int) -> Path:
    """`count` images (empty files: splitting never decodes them) with one object each."""
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for i in range(count):
        (root / "images" / f"f{i:03d}.jpg").write_bytes(b"")
        name = "Mask" if i % 3 else "No-Mask"
        write_label_file(root / "labels" / f"f{i:03d}.txt", [KittiObject(name, 1, 1, 9, 9)])
    return root


@pytest.mark.parametrize(
    ("count", "val_split", "expected_val"), [(10, 20, 2), (691, 20, 138), (7, 50, 3), (5, 0, 0)]
)
def test_random_fold_sizes_follow_val_split(
    count: int, val_split: float, expected_val: int
) -> None:
    names = [f"f{i}" for i in range(count)]
    val, train = partition_random(names, val_split, seed=42)
    assert len(val) == expected_val and len(train) == count - expected_val
    assert sorted(val + train) == sorted(names)


def test_random_split_is_deterministic_for_a_seed() -> None:
    names = [f"f{i}" for i in range(100)]
    assert partition_random(names, 20, 42) == partition_random(list(reversed(names)), 20, 42)
    assert partition_random(names, 20, 42) != partition_random(names, 20, 43)


def test_sequence_partition_matches_tao_order() -> None:
    sequences = {"a": ["a1"], "b": ["b1", "b2", "b3"], "c": ["c1", "c2"], "d": ["d1", "d2"]}
    # TAO: sort by (-len, id) -> b, c, d, a; deal round-robin into 3 -> [b, a], [c], [d]; reverse.
    assert partition_sequence(sequences, 3) == [
        ["d1", "d2"],
        ["c1", "c2"],
        ["a1", "b1", "b2", "b3"],
    ]
    assert partition_sequence(sequences, 1) == [["a1", "b1", "b2", "b3", "c1", "c2", "d1", "d2"]]


def test_sequence_mode_keeps_sequences_whole(tmp_path: Path) -> None:
    root = make_kitti(tmp_path / "kitti", 30)
    sequences = {
        f"seq{s}": [f"f{i:03d}.jpg" for i in range(s * 6, s * 6 + 6 - s)] for s in range(5)
    }
    (root / "kitti_seq_to_map.json").write_text(json.dumps(sequences))
    split = split_dataset(SplitSettings(root=root, partition_mode="sequence", num_partitions=3))
    fold_of = {p.stem: i for i, fold in enumerate(split.folds) for p in fold}
    for frames in sequences.values():
        assert len({fold_of[Path(f).stem] for f in frames}) == 1
    claimed = sum(len(f) for f in sequences.values())
    assert len(split.unassigned) == 30 - claimed == 10


def test_sequence_map_errors_name_the_file(tmp_path: Path) -> None:
    root = make_kitti(tmp_path / "kitti", 3)
    settings = SplitSettings(root=root, partition_mode="sequence", num_partitions=2)
    with pytest.raises(DataFormatError, match="sequence map does not exist"):
        split_dataset(settings)
    (root / "kitti_seq_to_map.json").write_text('{"s1": ["f000", "f009"]}')
    with pytest.raises(
        DataFormatError,
        match=r"kitti_seq_to_map.json: error: \[s1\] frames without an image: \['f009'\]",
    ):
        split_dataset(settings)
    (root / "kitti_seq_to_map.json").write_text('{"s1": ["f000"], "s2": ["f000"]}')
    with pytest.raises(DataFormatError, match="frame 'f000' is in sequences 's1' and 's2'"):
        split_dataset(settings)
    (root / "kitti_seq_to_map.json").write_text('{"s1": ["f000"],\n}')
    with pytest.raises(DataFormatError, match=r"kitti_seq_to_map.json:2: error: invalid JSON"):
        split_dataset(settings)


def test_random_mode_makes_two_folds() -> None:
    with pytest.raises(ValidationError, match="random partition mode makes exactly 2 folds"):
        SplitSettings(root=Path("."), partition_mode="random", num_partitions=3)
    with pytest.raises(ValidationError):
        SplitSettings(root=Path("."), val_split=100)


def test_written_folds_read_back_for_training(tmp_path: Path) -> None:
    root = make_kitti(tmp_path / "kitti", 20)
    out = tmp_path / "split"
    (out).mkdir()
    (out / "fold-7.txt").write_text("stale\n")
    summary = write_partitions(split_dataset(SplitSettings(root=root, val_split=25, seed=1)), out)
    assert sorted(p.name for p in out.iterdir()) == ["fold-0.txt", "fold-1.txt", "partitions.json"]
    assert [f["images"] for f in summary["folds"]] == [5, 15]
    total = {k: sum(f["objects"].get(k, 0) for f in summary["folds"]) for k in ("Mask", "No-Mask")}
    assert total == {"Mask": 13, "No-Mask": 7}
    lines = (out / "fold-0.txt").read_text().splitlines()
    assert lines == sorted(lines) and all(line.startswith("images/f") for line in lines)

    folds = read_partitions(str(out / "*"))  # as a training spec's tfrecords_path names it
    assert sorted(folds) == [0, 1]
    assert sorted(folds[0] + folds[1]) == sorted((root / "images").iterdir())
    train, val = training_datasets(out / "*", validation_fold=0)
    assert [s.image for s in val] == sorted(folds[0])
    assert len(train) == 15 and train[0].label == root / "labels" / f"{train[0].image.stem}.txt"


def test_read_partitions_errors(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="no split here"):
        read_partitions(tmp_path)
    root = make_kitti(tmp_path / "kitti", 4)
    write_partitions(split_dataset(SplitSettings(root=root, val_split=50)), tmp_path / "s")
    with pytest.raises(DataFormatError, match=r"no fold 5; folds are \[0, 1\]"):
        training_datasets(tmp_path / "s", 5)
    (tmp_path / "s" / "fold-1.txt").write_text("images/f000.jpg\n")
    with pytest.raises(
        DataFormatError, match=r"fold-1\.txt: error: 1 images, partitions\.json says 2"
    ):
        read_partitions(tmp_path / "s")
