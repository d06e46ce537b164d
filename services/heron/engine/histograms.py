"""Activation ranges the way TensorRT's calibrators choose them, from one pass over the images.

Every float activation is histogrammed by magnitude (|x|, 2048 equal bins from 0, widened by
doubling the bin width when a later batch goes further: old bins then sum in pairs, exactly).
From that one histogram per tensor:

- `minmax`: the largest |x| seen;
- `percentile`: the |x| below which `percentile` % of the values lie (TensorRT's legacy
  calibrator, pytorch-quantization's `percentile`);
- `entropy`: TensorRT's EntropyCalibration2 — the threshold among bins 128…2048 whose 128-level
  quantisation of the clipped histogram has the least KL divergence from it.

Symmetric int8 (what TensorRT builds) uses only amax, so these are amax values.
ONNX Runtime's histogram calibrators are not used: their entropy search with the default 128
bins only ever tries the full range, and their percentile collector re-bins every batch with
explicit edges, minutes per batch at 960×544.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

NUM_BINS = 2048  # TensorRT's histogram size
QUANTISED_BINS = 128  # int8 magnitudes 0…127
MIN_BIN_WIDTH = 1e-12
# Stretches of a tensor the binning loop fills apart (one histogram each, summed after): more
# than the cores, so that a core that finishes early takes another.
_SLICES = 16


class NonFiniteError(ValueError):
    """A tensor holds NaN or ±inf: no range can be calibrated from it."""


@dataclass
class MagnitudeHistogram:
    """|x| counts in `counts.size` bins of `width`, from 0; `amax` is the largest |x| seen."""

    counts: np.ndarray = field(default_factory=lambda: np.zeros(NUM_BINS, dtype=np.int64))
    width: float = 0.0
    amax: float = 0.0
    low: float = float("inf")  # signed extremes: the range U8S8 (asymmetric) quantises
    high: float = float("-inf")

    def add(self, values: np.ndarray) -> None:
        """One batch of a tensor: the width comes from the first batch's largest |x| and
        doubles whenever a later batch reaches past the last bin.

        The counts are those of `np.bincount(trunc(|x| · float32(1/width)))` with everything
        past the last bin in it, at the width in force after the batch. One compiled pass
        (heron.engine.binning) finds the batch's extremes and bins it at the width before it; a
        batch that reaches further is binned again at the doubled width. The first batch
        of a histogram takes a pass for its extremes first.
        """
        flat = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
        if flat.size == 0:
            return
        if self.width == 0.0:
            low, high = _extremes(flat)
            self.width = max(max(-low, high) / self.counts.size, MIN_BIN_WIDTH)
        counts, low, high = _bin(flat, self.width, self.counts.size)
        top = max(-low, high)  # |x| of a float32 is exact: the largest |x|
        if top >= self.width * self.counts.size:
            while top >= self.width * self.counts.size:
                # Twice the width: bins 2k and 2k+1 become bin k, the upper half is empty.
                pairs = self.counts.reshape(-1, 2).sum(axis=1)
                self.counts = np.concatenate([pairs, np.zeros_like(pairs)])
                self.width *= 2.0
            counts, low, high = _bin(flat, self.width, self.counts.size)
        self.low = min(self.low, low)
        self.high = max(self.high, high)
        self.amax = max(self.amax, top)
        self.counts += counts

    @property
    def used_bins(self) -> int:
        """Bins up to the one holding amax: the histogram the thresholds search."""
        if self.width == 0.0:
            return 1
        return min(self.counts.size, int(self.amax / self.width) + 1)


def _extremes(flat: np.ndarray) -> tuple[float, float]:
    low, high = float(flat.min()), float(flat.max())
    if not (np.isfinite(low) and np.isfinite(high)):
        raise NonFiniteError(f"values from {low} to {high}: NaN or infinity")
    return low, high


def _bin(flat: np.ndarray, width: float, bins: int) -> tuple[np.ndarray, float, float]:
    """(counts at `width`, low, high) of `flat` in one pass; the last bin takes the rest."""
    from heron.engine.binning import bin_magnitudes

    slices = min(_SLICES, max(1, flat.size // 4096))
    counts, lows, highs, bad = bin_magnitudes(flat, np.float32(1.0 / width), bins, slices)
    low, high = float(lows.min()), float(highs.max())
    if bad or not (np.isfinite(low) and np.isfinite(high)):
        raise NonFiniteError(f"{bad} NaN of {flat.size} values, values from {low} to {high}")
    return counts.sum(axis=0), low, high


def percentile_amax(hist: MagnitudeHistogram, percentile: float) -> float:
    """Upper edge of the bin where the cumulative share reaches `percentile` %, ≤ amax."""
    counts = hist.counts[: hist.used_bins]
    total = int(counts.sum())
    if total == 0:
        return hist.amax
    index = int(np.searchsorted(np.cumsum(counts), percentile / 100.0 * total))
    return min(hist.amax, (index + 1) * hist.width)


def _kl_divergence(reference: np.ndarray, candidate: np.ndarray) -> float:
    p = reference / reference.sum()
    q = candidate / candidate.sum()
    mask = p > 0
    if np.any(q[mask] == 0):
        return float("inf")
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))


def entropy_amax(hist: MagnitudeHistogram, levels: int = QUANTISED_BINS) -> float:
    """TensorRT's EntropyCalibration2 threshold (as pytorch-quantization computes it)."""
    counts = hist.counts[: hist.used_bins].astype(np.float64)
    if counts.size <= levels or counts.sum() == 0:
        return hist.amax
    counts[0] = counts[1]  # the spike at 0 (ReLU outputs) would dominate the divergence
    best, best_bins = float("inf"), counts.size
    for bins in range(levels, counts.size + 1):
        reference = counts[:bins].copy()
        reference[-1] += counts[bins:].sum()  # clipped values land in the last bin
        level = (np.arange(bins) * levels) // bins  # which of the `levels` bins each bin joins
        nonzero = counts[:bins] > 0
        sums = np.bincount(level, weights=counts[:bins], minlength=levels)
        spread = np.bincount(level, weights=nonzero, minlength=levels)
        candidate = np.where(nonzero, sums[level] / np.maximum(spread[level], 1), 0.0)
        if candidate.sum() == 0:
            continue
        divergence = _kl_divergence(reference, candidate)
        if divergence <= best:  # ties: the larger threshold, as TensorRT
            best, best_bins = divergence, bins
    return min(hist.amax, best_bins * hist.width)


class HistogramCollector:
    """One MagnitudeHistogram per tensor name, fed batch by batch."""

    def __init__(self) -> None:
        self.histograms: dict[str, MagnitudeHistogram] = {}

    def add(self, tensors: Iterable[tuple[str, np.ndarray]]) -> None:
        for name, values in tensors:
            try:
                self.histograms.setdefault(name, MagnitudeHistogram()).add(values)
            except NonFiniteError as e:
                raise NonFiniteError(f"tensor {name!r}: {e}") from None

    def ranges(self, amax: dict[str, float]) -> dict[str, tuple[float, float]]:
        """(low, high) per tensor: the signed range seen, clipped to [−amax, amax]. Symmetric
        quantisation uses max(|low|, |high|) = amax; asymmetric (uint8) the range itself."""
        return {n: (max(h.low, -amax[n]), min(h.high, amax[n])) for n, h in self.histograms.items()}

    def amax(self, method: str, percentile: float = 99.999) -> dict[str, float]:
        """amax per tensor for `minmax`, `percentile` or `entropy`."""
        if method == "minmax":
            return {n: h.amax for n, h in self.histograms.items()}
        if method == "percentile":
            return {n: percentile_amax(h, percentile) for n, h in self.histograms.items()}
        if method == "entropy":
            return {n: entropy_amax(h) for n, h in self.histograms.items()}
        raise ValueError(
            f"calibration method must be minmax, percentile or entropy, got {method!r}"
        )
