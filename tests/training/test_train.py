"""Training on 16 real images: the loss falls, checkpoints resume, validation scores AP."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import replace
from pathlib import Path

import pytest
from heron.training import checkpoint as ckpt
from heron.training.dataset import LabelledImage
from heron.training.metrics_log import read_metrics
from heron.training.train import ResumeError, TrainOptions, train

from tests.training.conftest import tiny_settings

pytestmark = pytest.mark.shared_data
CPU = TrainOptions(device="cpu", progress=False, workers=2)


def test_a_few_iterations_reduce_the_loss(
    real_items: list[LabelledImage], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s = tiny_settings(num_epochs=6)
    with caplog.at_level(logging.INFO, logger="heron.training"):
        result = train(s, real_items, [], tmp_path, replace(CPU, validate=False))
    # the global batch and step count are said up front (they change with the GPU count)
    assert "1 process(es) x batch 4 = 4 images a step: 4 steps an epoch, 24 in 6 epochs" in (
        caplog.text
    )
    losses = [r["loss"] for r in read_metrics(tmp_path / "metrics.jsonl")]
    assert len(losses) == 6 and result.steps == 6 * 4
    assert losses[-1] < 0.7 * losses[0]
    assert (tmp_path / "loss.png").is_file()
    # the steady rate leaves out the run's first (warm-up) epoch; both are measured
    assert result.images_per_s > 0 and result.steady_images_per_s > 0
    final = ckpt.load(result.final_model)
    assert final.epoch == 6 and final.optimizer is None


def test_resume_continues_the_epoch_count(real_items: list[LabelledImage], tmp_path: Path) -> None:
    train(tiny_settings(num_epochs=2), real_items[:8], [], tmp_path, replace(CPU, validate=False))
    assert ckpt.load(ckpt.last_path(tmp_path)).epoch == 2
    result = train(
        tiny_settings(num_epochs=3), real_items[:8], [], tmp_path, replace(CPU, validate=False)
    )
    assert result.epochs == 3 and result.steps == 3 * 2
    # this run trained one epoch, its warm-up: no steady rate to report
    assert result.steady_images_per_s == 0.0 and result.images_per_s > 0
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert [r["step"] for r in records] == [2, 4, 6]
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("epoch_*.pt")) == [
        "epoch_001.pt",
        "epoch_002.pt",
        "epoch_003.pt",
    ]


def test_resume_refuses_another_model(real_items: list[LabelledImage], tmp_path: Path) -> None:
    train(tiny_settings(num_epochs=1), real_items[:4], [], tmp_path, replace(CPU, validate=False))
    with pytest.raises(ResumeError, match="another model"):
        train(tiny_settings(num_layers=18, num_epochs=2), real_items[:4], [], tmp_path, CPU)


def test_validation_writes_ap_and_curves(real_items: list[LabelledImage], tmp_path: Path) -> None:
    result = train(tiny_settings(num_epochs=2), real_items[:12], real_items[12:], tmp_path, CPU)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all(set(r["ap"]) == {"mask", "no-mask"} for r in records)
    assert all(0.0 <= r["mAP"] <= 1.0 for r in records)
    assert result.last_record["mAP"] == records[-1]["mAP"]
    for name in ("ap.png", "loss.png", "pr_curves.png"):
        assert (tmp_path / name).stat().st_size > 1000


def test_mosaic_training_runs_on_real_images(
    real_items: list[LabelledImage], tmp_path: Path
) -> None:
    """Mosaics (four images' boxes per sample) through the whole loop, then whole images."""
    s = tiny_settings(num_epochs=3)
    s = replace(s, augment=replace(s.augment, mosaic_probability=1.0, mosaic_off_last_epochs=1))
    result = train(s, real_items[:8], [], tmp_path, replace(CPU, validate=False))
    losses = [r["loss"] for r in read_metrics(tmp_path / "metrics.jsonl")]
    assert result.epochs == 3 and all(math.isfinite(v) and v > 0 for v in losses)
    assert ckpt.load(result.final_model).settings.augment.mosaic_probability == 1.0
