"""Fixtures for the training tests: tiny settings; 16 real images, or 8 synthetic ones, as a split
KITTI folder; the root logger put back after a test that ran the Job."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from heron.training.dataset import LabelledImage
from heron.training.settings import (
    AugmentSettings,
    EvalSettings,
    ModelSettings,
    OptimSettings,
    TrainingSettings,
)

from tests.support.root_logging import root_logging_kept

CLASS_MAP = {"with_mask": "mask", "without_mask": "no-mask", "mask_weared_incorrect": "no-mask"}
KITTI_SIZE = (256, 144)  # small, so the test data converts in a second
INPUT = (128, 64)  # network input of the tests: an 8×4 grid


def tiny_settings(arch: str = "resnet", num_layers: int = 10, **optim: float) -> TrainingSettings:
    return TrainingSettings(
        classes=("mask", "no-mask"),
        model=ModelSettings(
            arch=arch,  # type: ignore[arg-type]
            num_layers=num_layers,
            input_width=INPUT[0],
            input_height=INPUT[1],
        ),
        class_mapping=CLASS_MAP,
        augment=AugmentSettings(hflip_probability=0.0),
        optim=OptimSettings(
            batch_size=4,
            num_epochs=int(optim.pop("num_epochs", 3)),
            min_learning_rate=float(optim.pop("min_learning_rate", 1e-3)),
            max_learning_rate=float(optim.pop("max_learning_rate", 1e-3)),
            checkpoint_interval=1,
        ),
        evaluation=EvalSettings(validation_period=1),
    )


@pytest.fixture(scope="session")
def kitti16(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 16 real VOC images converted to KITTI (256×144) and split 75/25 (seed 42)."""
    from heron.training.data.convert import convert_samples
    from heron.training.data.split import SplitSettings, split_dataset, write_partitions
    from heron.training.data.voc import from_voc

    source = shared_data / "facemask-kaggle"
    samples = list(from_voc(source / "annotations", source / "images"))[:16]
    root = tmp_path_factory.mktemp("kitti16")
    kitti = root / "kitti"
    convert_samples(samples, kitti, class_map={k: k for k in CLASS_MAP}, size=KITTI_SIZE)
    split = split_dataset(SplitSettings(root=kitti, val_split=25.0, seed=42))
    write_partitions(split, root / "split")
    return root


@pytest.fixture(scope="session")
def real_items(kitti16: Path) -> list[LabelledImage]:
    from heron.evaluation.kitti import KittiDataset
    from heron.training.dataset import from_kitti

    items, _ = from_kitti(KittiDataset(kitti16 / "kitti"), tiny_settings())
    assert len(items) == 16
    assert sum(len(i.labels) for i in items) > 16
    return items


@pytest.fixture(scope="session")
def synthetic_kitti(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 noise images (128×64) with one face each, as a split KITTI folder (`kitti/`, `split/`,
    75/25): what tests/training/test_job.py's TINY_SPEC reads, for a run of seconds on a CPU."""
    import cv2
    import numpy as np
    from heron.training.data.split import SplitSettings, split_dataset, write_partitions

    root = tmp_path_factory.mktemp("synthetic")
    kitti = root / "kitti"
    (kitti / "images").mkdir(parents=True)
    (kitti / "labels").mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        image = rng.integers(0, 256, (INPUT[1], INPUT[0], 3), dtype=np.uint8)
        cv2.imwrite(str(kitti / "images" / f"{i}.jpg"), image)
        label = "with_mask" if i % 2 else "without_mask"
        (kitti / "labels" / f"{i}.txt").write_text(f"{label} 0 0 0 10 10 40 40 0 0 0 0 0 0 0\n")
    split = split_dataset(SplitSettings(root=kitti, val_split=25.0, seed=42))
    write_partitions(split, root / "split")
    return root


@pytest.fixture
def root_logging_restored(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The Job sets the process's logging up (heron.core.runtime.logs replaces the root's
    handlers, on the stderr of the moment: capsys's); put pytest's own back afterwards. The
    handler an earlier `heron train` left on the `heron` logger is away meanwhile."""
    monkeypatch.setattr(logging.getLogger("heron"), "handlers", [])
    with root_logging_kept():
        yield
    logging.captureWarnings(False)
