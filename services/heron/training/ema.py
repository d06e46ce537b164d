"""Exponential moving average of the weights (`training_config.ema_decay`, a Heron extension).

Validation, checkpoints' `model` and the final model hold the average; the optimiser keeps
training the raw weights. BatchNorm's running statistics are averaged with the parameters
(`use_buffers`), so the averaged network is consistent without a recalibration pass.

The decay is ramped in as min(decay, (1 + n) / (10 + n)) after n updates (TensorFlow's
`ExponentialMovingAverage(num_updates=...)` rule): early averages would otherwise be dominated
by the random head of step 0. With 553 images and batch 32 a run has only ~2,400 steps, so
the ramp matters.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel

Tensors = tuple[Tensor, ...] | list[Tensor]
AverageFn = Callable[[Tensors, Tensors, Tensor | int], None]


def ramped_ema(decay: float) -> AverageFn:
    """`AveragedModel`'s multi_avg_fn for an EMA whose decay grows to `decay`."""

    @torch.no_grad()
    def average(averaged: Tensors, current: Tensors, updates: Tensor | int) -> None:
        if not (averaged[0].is_floating_point() or averaged[0].is_complex()):
            for a, c in zip(averaged, current, strict=True):  # BatchNorm's step counters
                a.copy_(c)
            return
        n = torch.as_tensor(updates).to(averaged[0].device, torch.float32)
        d = torch.clamp((1.0 + n) / (10.0 + n), max=decay)
        # Tensor-valued factors: no device→host copy of the update count per step.
        torch._foreach_mul_(list(averaged), d)
        torch._foreach_add_(list(averaged), torch._foreach_mul(list(current), 1.0 - d))

    return average


def averaged(model: nn.Module, decay: float) -> AveragedModel:
    """A copy of `model` to be updated with `update_parameters(model)` after each step."""
    ema = AveragedModel(model, multi_avg_fn=ramped_ema(decay), use_buffers=True)
    ema.requires_grad_(False)
    ema.eval()
    return ema


def restore(ema: AveragedModel, weights: dict[str, Tensor], updates: int) -> None:
    """Resume: the averaged weights of a checkpoint, and how many updates made them."""
    ema.module.load_state_dict(weights)
    ema.n_averaged.fill_(updates)
