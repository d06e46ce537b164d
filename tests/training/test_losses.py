"""DetectNet_v2 cost: TAO's weighting, objective-weight schedule, autoweighting, regulariser."""

from __future__ import annotations

import pytest
import torch
from heron.training.losses import DetectNetCost, regularization
from heron.training.schedule import soft_start_annealing
from heron.training.settings import CostClass, Objective, OptimSettings, TrainingSettings
from heron.training.targets import Targets


def targets(n: int = 2, c: int = 2, h: int = 4, w: int = 8) -> Targets:
    cov = torch.zeros(n, c, h, w)
    cov[:, :, 1:3, 2:5] = 1.0
    bbox = torch.zeros(n, 4 * c, h, w)
    bbox[:, :, 1:3, 2:5] = 0.7
    return Targets(cov, bbox, cov * 0.25, torch.ones_like(cov))


def make(autoweighting: bool = False) -> DetectNetCost:
    s = TrainingSettings(
        classes=("a", "b"),
        cost={
            "a": CostClass(1.0, 0.05, Objective(1.0, 1.0), Objective(10.0, 1.0)),
            "b": CostClass(3.0, 0.05, Objective(1.0, 1.0), Objective(10.0, 10.0)),
        },
        enable_autoweighting=autoweighting,
    )
    return DetectNetCost(s)


def test_perfect_prediction_costs_less_than_a_wrong_one() -> None:
    t = targets()
    cost = make()
    good_logits = torch.where(t.cov > 0.5, 12.0, -12.0)
    good = cost(good_logits, t.bbox.clone(), t, 0.0).total
    bad = cost(-good_logits, t.bbox + 1.0, t, 0.0).total
    assert good < 1e-3 < bad


def test_class_and_objective_weights_are_normalised_as_tao_does() -> None:
    cost = make()
    torch.testing.assert_close(cost.class_weights, torch.tensor([0.25, 0.75]))
    torch.testing.assert_close(cost.objective_weights(0.0), torch.tensor([[1 / 11, 10 / 11]] * 2))
    # without autoweighting they move linearly to the normalised weight_target
    torch.testing.assert_close(
        cost.objective_weights(1.0), torch.tensor([[0.5, 0.5], [1 / 11, 10 / 11]])
    )
    torch.testing.assert_close(
        cost.objective_weights(0.5), (cost.objective_weights(0.0) + cost.objective_weights(1.0)) / 2
    )


def test_autoweighting_balances_objective_costs_after_an_epoch() -> None:
    cost = make(autoweighting=True)
    t = targets()
    for _ in range(3):
        cost(torch.zeros_like(t.cov), torch.zeros_like(t.bbox), t, 0.0)
    sums = cost._sums.clone()
    cost.end_epoch()
    raw = torch.tensor([[1.0, 1.0], [1.0, 10.0]]) / sums
    expected = (raw / raw.sum(dim=1, keepdim=True)).clamp(1e-4, 0.9999)
    torch.testing.assert_close(cost.objective_weights(0.3), expected)
    assert cost._steps == 0


def test_foreground_weight_scales_object_cells() -> None:
    t = targets()
    cost = make()
    miss_fg = cost.parts(torch.full_like(t.cov, -5.0), t.bbox, t)[:, 0]
    miss_bg = cost.parts(torch.where(t.cov > 0.5, 5.0, 5.0), t.bbox, t)[:, 0]
    assert (miss_bg > miss_fg).all()  # background weight 0.95 vs foreground 0.05


@pytest.mark.parametrize("kind", ["L1", "L2"])
def test_regulariser_sums_conv_kernels(kind: str) -> None:
    conv = torch.nn.Conv2d(2, 2, 1)
    torch.nn.init.constant_(conv.weight, -0.5)
    value = regularization(conv, kind, 2.0)
    assert value is not None
    assert value.item() == pytest.approx(2.0 * 4 * (0.5 if kind == "L1" else 0.25))
    assert regularization(conv, "NO_REG", 2.0) is None


def test_soft_start_annealing_schedule() -> None:
    o = OptimSettings(min_learning_rate=1e-6, max_learning_rate=1e-4, soft_start=0.1, annealing=0.7)
    assert soft_start_annealing(0.0, o) == pytest.approx(1e-6)
    assert soft_start_annealing(0.05, o) == pytest.approx(1e-5)  # log-linear: halfway = 1e-5
    assert soft_start_annealing(0.1, o) == pytest.approx(1e-4)
    assert soft_start_annealing(0.5, o) == pytest.approx(1e-4)
    assert soft_start_annealing(0.85, o) == pytest.approx(1e-5)
    assert soft_start_annealing(1.0, o) == pytest.approx(1e-6)


def test_updated_autoweights_reach_the_total_of_the_next_step() -> None:
    cost = make(autoweighting=True)
    t = targets()
    logits, bbox = torch.zeros_like(t.cov), torch.zeros_like(t.bbox)
    before = cost(logits, bbox, t, 0.0)
    cost.end_epoch()
    after = cost(logits, bbox, t, 0.0)
    weights = cost.class_weights.unsqueeze(1) * cost.objective_weights(0.0)
    torch.testing.assert_close(after.total, (weights * after.parts).sum())
    assert not torch.isclose(before.total, after.total)
