"""TAO's soft-start annealing learning-rate schedule.

Progress p ∈ [0, 1] is the fraction of training steps done. The rate climbs log-linearly
from min to max during [0, soft_start), holds max until `annealing`, then falls
log-linearly back to min by the end:

    p < soft_start:  min · (max/min)^(p/soft_start)
    p < annealing:   max
    else:            max · (min/max)^((p − annealing)/(1 − annealing))
"""

from __future__ import annotations

import math

from heron.training.settings import OptimSettings


def soft_start_annealing(progress: float, optim: OptimSettings) -> float:
    lo, hi = optim.min_learning_rate, optim.max_learning_rate
    p = min(max(progress, 0.0), 1.0)
    if p < optim.soft_start:
        return lo * math.exp(math.log(hi / lo) * p / optim.soft_start)
    if p < optim.annealing or optim.annealing >= 1.0:
        return hi
    t = (p - optim.annealing) / (1.0 - optim.annealing)
    return hi * math.exp(math.log(lo / hi) * t)
