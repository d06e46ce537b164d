"""TAO's scoring rules: normalisers, equalisation criteria, kept counts."""

from __future__ import annotations

import pytest
import torch
from heron.training.prune.importance import (
    Equalization,
    equalize,
    filter_norms,
    kept_count,
    normalize,
)


def test_filter_norms_are_per_output_filter() -> None:
    weight = torch.zeros(3, 2, 3, 3)
    weight[0, 0, 0, 0] = 3.0
    weight[0, 1, 1, 1] = 4.0
    weight[2] = 1.0
    assert filter_norms(weight).tolist() == pytest.approx([5.0, 0.0, 18**0.5])


@pytest.mark.parametrize(
    ("normalizer", "expected"),
    [("max", [0.25, 0.5, 1.0]), ("L2", [1 / 21**0.5, 2 / 21**0.5, 4 / 21**0.5])],
)
def test_normalizers(normalizer: str, expected: list[float]) -> None:
    got = normalize(torch.tensor([1.0, 2.0, 4.0]), normalizer)  # type: ignore[arg-type]
    assert got.tolist() == pytest.approx(expected)


def test_all_zero_layer_normalises_to_zero_not_nan() -> None:
    assert normalize(torch.zeros(4), "max").tolist() == [0.0] * 4


@pytest.mark.parametrize(
    ("criterion", "expected"),
    [
        ("union", [1.0, 0.5]),
        ("intersection", [0.25, 0.5]),
        ("arithmetic_mean", [0.625, 0.5]),
        ("geometric_mean", [0.5, 0.5]),
    ],
)
def test_equalization(criterion: Equalization, expected: list[float]) -> None:
    scores = torch.tensor([[1.0, 0.5], [0.25, 0.5]])
    assert equalize(scores, criterion).tolist() == pytest.approx(expected)


@pytest.mark.parametrize(
    ("above", "total", "granularity", "min_filters", "kept"),
    [
        (100, 128, 8, 16, 104),  # rounded up to a multiple of 8
        (100, 128, 1, 16, 100),
        (100, 128, 32, 16, 128),  # rounding never exceeds the layer
        (3, 128, 8, 16, 16),  # min filters
        (0, 64, 8, 16, 16),
        (10, 12, 8, 16, 12),  # a layer smaller than min filters keeps all it has
        (128, 128, 8, 16, 128),
    ],
)
def test_kept_count(above: int, total: int, granularity: int, min_filters: int, kept: int) -> None:
    scores = torch.cat([torch.ones(above), torch.full((total - above,), 0.01)])
    assert kept_count(scores, 0.1, granularity, min_filters) == kept


def test_threshold_zero_keeps_everything() -> None:
    assert kept_count(torch.zeros(40), 0.0, 8, 16) == 40
