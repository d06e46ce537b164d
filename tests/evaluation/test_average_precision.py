"""AP from hand-computed precision/recall: VOC2007 11-point sampling vs VOC2010+ integration."""

from __future__ import annotations

import numpy as np
import pytest
from heron.evaluation.ap.average_precision import (
    ap_integrate,
    ap_sample,
    interpolated_precision,
    precision_recall,
)


def _ap(tp: list[bool], num_gt: int) -> tuple[float, float]:
    precision, recall = precision_recall(np.array(tp, dtype=bool), num_gt)
    return ap_sample(precision, recall), ap_integrate(precision, recall)


@pytest.mark.parametrize(
    ("tp", "num_gt", "sample", "integrate"),
    [
        ([True], 1, 1.0, 1.0),  # one perfect detection
        ([False, True], 1, 0.5, 0.5),  # one false positive above the true one
        # TP, FP, TP over 2 boxes: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1.
        # SAMPLE: 6 levels (0..0.5) at 1, 5 levels (0.6..1) at 2/3; INTEGRATE: 0.5*1 + 0.5*2/3.
        ([True, False, True], 2, (6 + 5 * 2 / 3) / 11, 0.5 + 0.5 * 2 / 3),
        # Recall stops at 1/2: SAMPLE counts levels 0..0.5 (6 of 11), INTEGRATE the area 0.5.
        ([True, False], 2, 6 / 11, 0.5),
        ([False, False], 2, 0.0, 0.0),
        ([], 3, 0.0, 0.0),
    ],
)
def test_hand_computed_average_precision(
    tp: list[bool], num_gt: int, sample: float, integrate: float
) -> None:
    got_sample, got_integrate = _ap(tp, num_gt)
    assert got_sample == pytest.approx(sample, abs=1e-12)
    assert got_integrate == pytest.approx(integrate, abs=1e-12)


def test_precision_recall_are_cumulative() -> None:
    precision, recall = precision_recall(np.array([True, False, True, True]), 4)
    assert precision.tolist() == pytest.approx([1.0, 0.5, 2 / 3, 0.75])
    assert recall.tolist() == pytest.approx([0.25, 0.25, 0.5, 0.75])


def test_interpolated_precision_is_best_precision_at_or_beyond_each_recall() -> None:
    precision = np.array([1.0, 0.5, 2 / 3])
    recall = np.array([0.5, 0.5, 1.0])
    got = interpolated_precision(precision, recall, np.array([0.0, 0.5, 0.51, 1.0, 1.01]))
    assert got.tolist() == pytest.approx([1.0, 1.0, 2 / 3, 2 / 3, 0.0])


def test_more_sample_points_approach_integration() -> None:
    rng = np.random.default_rng(3)
    tp = rng.random(200) < 0.6
    precision, recall = precision_recall(tp, 150)
    exact = ap_integrate(precision, recall)
    assert abs(ap_sample(precision, recall, 10001) - exact) < 1e-3
    assert abs(ap_sample(precision, recall, 11) - exact) > abs(
        ap_sample(precision, recall, 1001) - exact
    )
