"""Labels meet the spec's classes: one convention, case aside, and a clear refusal when not."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest
from heron.evaluation.kitti import KittiSample
from heron.training.dataset import ClassMismatchError, from_kitti
from heron.training.settings import TrainingSettings

from tests.training.conftest import tiny_settings

LINE = "{} 0 0 0 10 10 40 40 0 0 0 0 0 0 0"


def samples(folder: Path, *labels: str) -> list[KittiSample]:
    """One label file per label (images are only named: from_kitti reads labels)."""
    out = []
    for i, label in enumerate(labels):
        path = folder / f"{i}.txt"
        path.write_text(LINE.format(label) + "\n")
        out.append(KittiSample(folder / f"{i}.jpg", path))
    return out


def spec(mapping: dict[str, str]) -> TrainingSettings:
    return replace(tiny_settings(), class_mapping=mapping)  # classes: mask, no-mask


@pytest.mark.parametrize(
    ("mapping", "label", "target"),
    [
        ({"mask": "mask", "no-mask": "no-mask"}, "mask", "mask"),
        ({"mask": "mask", "no-mask": "no-mask"}, "No-Mask", "no-mask"),  # TAO lower-cases labels
        ({"Mask": "mask"}, "mask", "mask"),  # a model trained on capitals scores lower case
        ({"with_mask": "mask"}, "mask", None),
        ({}, "NO-MASK", "no-mask"),  # no mapping: the classes themselves
        ({}, "face", None),
    ],
)
def test_labels_meet_keys_whatever_their_case(
    mapping: dict[str, str], label: str, target: str | None
) -> None:
    assert spec(mapping).target_of(label) == target


def test_an_exact_spelling_wins_over_one_that_differs_in_case() -> None:
    settings = spec({"Mask": "no-mask", "mask": "mask"})
    assert settings.target_of("mask") == "mask" and settings.target_of("Mask") == "no-mask"


def test_data_no_label_of_which_the_spec_reads_is_refused_naming_both_sides(
    tmp_path: Path,
) -> None:
    data = samples(tmp_path, "with_mask", "with_mask", "without_mask")
    settings = spec({"mask": "mask", "no-mask": "no-mask"})
    with pytest.raises(ClassMismatchError) as caught:
        from_kitti(data, settings)
    message = str(caught.value)
    assert "the data's labels are with_mask (2), without_mask (1)" in message
    assert "target_class_mapping reads mask -> mask, no-mask -> no-mask" in message


def test_without_a_mapping_the_spec_classes_are_named(tmp_path: Path) -> None:
    with pytest.raises(ClassMismatchError, match="the spec's classes are mask, no-mask"):
        from_kitti(samples(tmp_path, "face"), spec({}))


def test_a_class_no_label_reaches_beside_dropped_labels_is_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = samples(tmp_path, "mask", "nomask")
    with caplog.at_level(logging.WARNING, logger="heron.training.dataset"):
        items, summary = from_kitti(data, spec({"mask": "mask", "no-mask": "no-mask"}))
    assert len(items) == 2 and summary.boxes == {"mask": 1} and summary.ignored == {"nomask": 1}
    assert "class 'no-mask' of the spec gets no box" in caplog.text and "nomask (1)" in caplog.text


def test_negative_images_and_fully_mapped_data_pass_quietly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    data = [KittiSample(tmp_path / "e.jpg", empty), *samples(tmp_path, "mask")]
    with caplog.at_level(logging.WARNING):
        items, _ = from_kitti(data, spec({"mask": "mask", "no-mask": "no-mask"}))
    assert len(items) == 2 and not caplog.records


def test_heron_train_refuses_such_data_before_it_trains(tmp_path: Path) -> None:
    """The issue's case: labels the default conversion writes, a spec reading other names."""
    import cv2
    import numpy as np
    from heron.cli.main import app
    from typer.testing import CliRunner

    from tests.training.test_job import write_spec

    kitti = tmp_path / "kitti"
    (kitti / "images").mkdir(parents=True)
    (kitti / "labels").mkdir()
    for i in range(4):
        cv2.imwrite(str(kitti / "images" / f"{i}.jpg"), np.zeros((64, 128, 3), np.uint8))
        (kitti / "labels" / f"{i}.txt").write_text(LINE.format("mask") + "\n")
    runner = CliRunner()
    split = runner.invoke(app, ["data", "split", str(kitti), "-o", str(tmp_path / "split")])
    assert split.exit_code == 0, split.output
    spec = write_spec(tmp_path)  # reads with_mask, without_mask, mask_weared_incorrect

    result = runner.invoke(app, ["train", "-e", str(spec), "-r", str(tmp_path / "results")])

    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert "no label of the data is a class of the spec" in output
    assert "the data's labels are mask (" in output and "with_mask -> mask" in output
    assert not (tmp_path / "results" / "checkpoints").exists()
