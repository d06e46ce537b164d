"""Weight averaging (`training_config.ema_decay`): the ramped decay, and what checkpoints hold."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from heron.training import checkpoint as ckpt
from heron.training.dataset import LabelledImage
from heron.training.ema import averaged
from heron.training.train import TrainOptions, train
from torch import nn

from tests.training.conftest import tiny_settings

CPU = TrainOptions(device="cpu", progress=False, workers=2, validate=False)


def test_decay_ramps_in_then_holds() -> None:
    linear, norm = nn.Linear(1, 1, bias=False), nn.BatchNorm1d(1)
    model = nn.Sequential(linear, norm)
    ema = averaged(model, decay=0.5)
    weight = linear.weight
    expected = 0.0
    for step in range(6):
        with torch.no_grad():
            weight.fill_(float(step))
        ema.update_parameters(model)
        if step == 0:
            expected = 0.0  # the first update copies
        else:
            n = step  # updates before this one
            d = min(0.5, (1 + n) / (10 + n))
            expected = d * expected + (1 - d) * step
        weights = ema.module.state_dict()
        assert float(weights["0.weight"]) == pytest.approx(expected)
    # BatchNorm's integer step counter is copied, not averaged
    assert weights["1.num_batches_tracked"].dtype == torch.long


def test_checkpoints_hold_the_average_and_resume_the_raw_weights(
    real_items: list[LabelledImage], tmp_path: Path
) -> None:
    s = tiny_settings(num_epochs=2)
    s = replace(s, optim=replace(s.optim, ema_decay=0.9))
    train(s, real_items[:8], [], tmp_path, CPU)
    last = ckpt.load(ckpt.last_path(tmp_path))
    assert last.training_model is not None
    differs = [
        k
        for k, v in last.model.items()
        if v.is_floating_point() and not torch.equal(v, last.training_model[k])
    ]
    assert differs  # the average lags the optimiser's weights
    final = ckpt.load(tmp_path / "model.pt")
    assert final.training_model is None  # the final model carries only what is evaluated
    assert all(torch.equal(final.model[k], v) for k, v in last.model.items())
    # resuming continues from the raw weights and keeps averaging
    s3 = replace(s, optim=replace(s.optim, num_epochs=3))
    result = train(s3, real_items[:8], [], tmp_path, CPU)
    assert result.epochs == 3


def test_without_averaging_no_raw_copy_is_stored(
    real_items: list[LabelledImage], tmp_path: Path
) -> None:
    train(tiny_settings(num_epochs=1), real_items[:4], [], tmp_path, CPU)
    assert ckpt.load(ckpt.last_path(tmp_path)).training_model is None
