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


def _reference_add(hist: MagnitudeHistogram, values: np.ndarray) -> None:
    """The numpy histogram update the compiled loop replaced (kept here as the reference)."""
    hist.low = min(hist.low, float(values.min()))
    hist.high = max(hist.high, float(values.max()))
    magnitude = np.abs(values, dtype=np.float32).ravel()
    top = float(magnitude.max())
    hist.amax = max(hist.amax, top)
    if hist.width == 0.0:
        hist.width = max(top / hist.counts.size, 1e-12)
    while top >= hist.width * hist.counts.size:
        pairs = hist.counts.reshape(-1, 2).sum(axis=1)
        hist.counts = np.concatenate([pairs, np.zeros_like(pairs)])
        hist.width *= 2.0
    index = np.minimum(
        (magnitude * np.float32(1.0 / hist.width)).astype(np.int64), hist.counts.size - 1
    )
    hist.counts += np.bincount(index, minlength=hist.counts.size)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_compiled_binning_equals_the_numpy_reference_exactly(seed: int) -> None:
    rng = np.random.default_rng(seed)
    fast, reference = MagnitudeHistogram(), MagnitudeHistogram()
    for batch in range(6):
        scale = float(rng.choice([0.5, 1.0, 3.0])) * (1 + batch)  # grows: widens, sometimes
        values = rng.laplace(0.0, scale, 50_000).astype(np.float32)
        values[rng.random(values.size) < 0.4] = 0.0  # ReLU-like zeros
        fast.add(values)
        _reference_add(reference, values)
        assert fast.width == reference.width
        assert np.array_equal(fast.counts, reference.counts)
        assert (fast.low, fast.high, fast.amax) == (reference.low, reference.high, reference.amax)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_infinity_are_refused_naming_the_tensor(bad: float) -> None:
    from heron.engine.histograms import NonFiniteError

    collector = HistogramCollector()
    collector.add([("conv", np.ones(10, dtype=np.float32))])
    values = np.ones(10_000, dtype=np.float32)
    values[1234] = bad
    with pytest.raises(NonFiniteError, match="tensor 'conv'"):
        collector.add([("conv", values)])
    with pytest.raises(NonFiniteError, match="tensor 'first'"):
        collector.add([("first", values)])  # the first batch of a tensor: the extremes pass
