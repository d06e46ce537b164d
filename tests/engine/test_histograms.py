"""Magnitude histograms and TensorRT's range choices (minmax, percentile, entropy)."""

from __future__ import annotations

import numpy as np
import pytest
from heron.engine.histograms import (
    NUM_BINS,
    HistogramCollector,
    MagnitudeHistogram,
    entropy_amax,
    percentile_amax,
)


def test_widening_keeps_every_count_and_the_amax() -> None:
    rng = np.random.default_rng(0)
    small, large = rng.normal(0, 1, 10_000), rng.normal(0, 10, 10_000)
    hist = MagnitudeHistogram()
    hist.add(small)
    hist.add(large)
    assert hist.counts.size == NUM_BINS
    assert int(hist.counts.sum()) == 20_000
    assert hist.amax == pytest.approx(max(np.abs(small).max(), np.abs(large).max()))
    assert hist.width * NUM_BINS > hist.amax
    # Same counts as one histogram of everything at the final bin width.
    both = np.abs(np.concatenate([small, large]))
    expected = np.bincount((both / hist.width).astype(np.int64), minlength=NUM_BINS)
    assert (np.abs(hist.counts - expected) <= 2).all()  # float32 rounding at bin edges


def test_all_zero_tensor_gives_zero_amax() -> None:
    hist = MagnitudeHistogram()
    hist.add(np.zeros((2, 3)))
    assert percentile_amax(hist, 99.99) == 0.0
    assert entropy_amax(hist) == 0.0


@pytest.mark.parametrize("percentile", [99.0, 99.9, 99.99])
def test_percentile_matches_numpy(percentile: float) -> None:
    values = np.random.default_rng(1).normal(0, 1, 200_000)
    hist = MagnitudeHistogram()
    hist.add(values)
    expected = float(np.percentile(np.abs(values), percentile))
    assert percentile_amax(hist, percentile) == pytest.approx(expected, abs=2 * hist.width)


def test_entropy_clips_the_tail_and_keeps_the_bulk() -> None:
    values = np.random.default_rng(2).laplace(0, 1, 1_000_000)  # long-tailed, like activations
    hist = MagnitudeHistogram()
    hist.add(values)
    amax = entropy_amax(hist)
    assert 4.0 < amax < 0.8 * hist.amax


def test_collector_methods() -> None:
    collector = HistogramCollector()
    values = np.random.default_rng(3).normal(0, 1, (4, 1000)).astype(np.float32)
    collector.add([("a", values), ("b", 2 * values)])
    minmax = collector.amax("minmax")
    assert minmax["b"] == pytest.approx(2 * minmax["a"])
    assert collector.amax("percentile", 99.0)["a"] < minmax["a"]
    assert set(collector.amax("entropy")) == {"a", "b"}
    with pytest.raises(ValueError, match="minmax, percentile or entropy"):
        collector.amax("kl")
