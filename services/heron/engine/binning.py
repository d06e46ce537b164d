"""The compiled loop behind heron.engine.histograms: one pass over a tensor that finds its
signed extremes and counts |x| into equal bins.

In its own module because it imports numba (LLVM) at import time: heron.engine.histograms
loads it on the first histogram, so `heron --help` and the rest of the engine never pay for
it. numba compiles the loop on first use and caches the machine code beside this file (or in
the user's cache folder where that is read-only): a few seconds once per machine. Where no
folder is writable (a read-only container), it compiles once per process instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
import numpy as np


def _bin_magnitudes(
    flat: np.ndarray, inv_width: np.float32, bins: int, slices: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(counts per slice, low per slice, high per slice, NaN/inf count) of a float32 vector.

    A value's bin is trunc(|x| · inv_width), the float32 product numpy's
    `(np.abs(x) * np.float32(inv_width)).astype(np.int64)` computes, clipped to the last
    bin. `slices` stretches of the vector run in parallel, each into its own histogram. The
    loop has no branch a value's sign or size decides but the clipping: NaN fails every
    comparison (counted, never binned), ±inf shows in low/high.
    """
    n = flat.size
    counts = np.zeros((slices, bins), dtype=np.int64)
    lows = np.empty(slices, dtype=np.float32)
    highs = np.empty(slices, dtype=np.float32)
    bad = np.zeros(slices, dtype=np.int64)
    step = (n + slices - 1) // slices
    last = bins - 1
    limit = np.float32(bins)
    for s in numba.prange(slices):
        hist = counts[s]
        low, high = np.float32(np.inf), np.float32(-np.inf)
        nan = 0
        for i in range(s * step, min(n, (s + 1) * step)):
            value = flat[i]
            low = min(low, value)
            high = max(high, value)
            scaled = abs(value) * inv_width
            if scaled >= limit:
                hist[last] += 1
            elif scaled >= 0:
                hist[np.int64(scaled)] += 1
            else:
                nan += 1
        lows[s], highs[s], bad[s] = low, high, nan
    return counts, lows, highs, int(bad.sum())


def _compiled(function: Callable[..., Any]) -> Callable[..., Any]:
    try:
        compiled: Callable[..., Any] = numba.njit(parallel=True, nogil=True, cache=True)(function)
    except RuntimeError:  # numba found no writable folder for its cache
        compiled = numba.njit(parallel=True, nogil=True)(function)
    return compiled


bin_magnitudes = _compiled(_bin_magnitudes)
