"""DetectNet_v2's cost (`cost_function_config`) and the L1/L2 regulariser.

Per class c, as TAO computes it:
- coverage: weighted binary cross-entropy averaged over every cell, weight
  `coverage_foreground_weight` where the target is > 0.5 and (1 − it) elsewhere, times the
  rasteriser's mask (deadzone cells count 0). `coverage_loss="l2"` swaps the cross-entropy for
  a squared error with the same weights (older DetectNet).
- bbox: L1 between predicted and target offsets, weighted by `cov_norm`, averaged over cells.
total = Σ_c class_weight_c/Σ class_weight · Σ_o w_{c,o} · cost_{c,o}.

Objective weights w start at `initial_weight` normalised per class (TAO). Without
autoweighting they move linearly to the normalised `weight_target` over training; with
`enable_autoweighting` they are recomputed at each epoch's end as TAO does:
w_o ∝ weight_target_o / (mean cost_o over the epoch), normalised, clamped to
[min_objective_weight, max_objective_weight].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn import functional

from heron.training.settings import TrainingSettings
from heron.training.targets import Targets

OBJECTIVES = ("cov", "bbox")
CoverageLoss = Literal["bce", "l2"]


@dataclass(frozen=True)
class LossValue:
    total: Tensor
    parts: Tensor  # (C, 2) unweighted mean cost per class and objective, detached


class DetectNetCost:
    """Holds the objective weights (state for autoweighting and resume)."""

    def __init__(self, settings: TrainingSettings, coverage_loss: CoverageLoss = "bce") -> None:
        classes = settings.classes
        costs = [settings.cost_for(name) for name in classes]
        weights = torch.tensor([c.class_weight for c in costs], dtype=torch.float32)
        self.class_weights = weights / weights.sum().clamp(min=1e-12)
        self.foreground = torch.tensor([c.coverage_foreground_weight for c in costs])
        initial = torch.tensor([[c.cov.initial_weight, c.bbox.initial_weight] for c in costs])
        target = torch.tensor([[c.cov.weight_target, c.bbox.weight_target] for c in costs])
        self.initial = _normalise(initial)
        self.target_raw = target
        self.final = _normalise(target)
        self.autoweighting = settings.enable_autoweighting
        self.min_weight = settings.min_objective_weight
        self.max_weight = settings.max_objective_weight
        self.coverage_loss: CoverageLoss = coverage_loss
        self.auto_weights = self.initial.clone()
        self._sums = torch.zeros_like(initial)
        self._steps = 0
        self._device_copies: dict[str, tuple[Tensor, Tensor]] = {}

    def objective_weights(self, progress: float) -> Tensor:
        """(C, 2) weights at `progress` ∈ [0, 1] of training."""
        if self.autoweighting:
            return self.auto_weights
        t = min(max(progress, 0.0), 1.0)
        return (1.0 - t) * self.initial + t * self.final

    def __call__(
        self, cov_logits: Tensor, bbox: Tensor, targets: Targets, progress: float
    ) -> LossValue:
        parts = self.parts(cov_logits, bbox, targets)
        w = self._on(parts.device, "objective", self.objective_weights(progress))
        class_weights = self._on(parts.device, "class", self.class_weights)
        total = (class_weights.unsqueeze(1) * w * parts).sum()
        detached = parts.detach()
        self._sums = self._sums.to(parts.device) + detached
        self._steps += 1
        return LossValue(total, detached)

    def parts(self, cov_logits: Tensor, bbox: Tensor, targets: Targets) -> Tensor:
        """(C, 2) mean coverage and bbox cost per class (graph kept for backward)."""
        cov_logits = cov_logits.float()
        fg = self._on(cov_logits.device, "foreground", self.foreground).view(1, -1, 1, 1)
        weight = torch.where(targets.cov > 0.5, fg, 1.0 - fg) * targets.mask
        if self.coverage_loss == "bce":
            err = functional.binary_cross_entropy_with_logits(
                cov_logits, targets.cov, reduction="none"
            )
        else:
            err = (torch.sigmoid(cov_logits) - targets.cov) ** 2
        cov_cost = (weight * err).mean(dim=(0, 2, 3))
        n, c4, h, w = bbox.shape
        diff = (bbox.float() - targets.bbox).abs().reshape(n, c4 // 4, 4, h, w)
        bbox_cost = (targets.cov_norm.unsqueeze(2) * diff).mean(dim=(0, 2, 3, 4))
        return torch.stack([cov_cost, bbox_cost], dim=1)

    def _on(self, device: torch.device, name: str, value: Tensor) -> Tensor:
        """`value` on `device`, copied there only when it changed: a host→device copy per step
        and tensor would queue behind the GPU's work for nothing."""
        held = self._device_copies.get(name)
        if held is None or held[0] is not value or held[1].device != device:
            held = (value, value.to(device))
            self._device_copies[name] = held
        return held[1]

    def end_epoch(self, reduce: bool = False) -> None:
        """Autoweighting update from this epoch's mean costs (all ranks agree via all-reduce)."""
        sums = self._sums
        if reduce and torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(sums)  # a sum of means: normalisation cancels it
        if self.autoweighting and self._steps:
            sums = sums.cpu()
            raw = torch.where(sums > 0, self.target_raw / sums.clamp(min=1e-30), 0.0)
            total = raw.sum(dim=1, keepdim=True)
            new = (raw / total.clamp(min=1e-30)).clamp(self.min_weight, self.max_weight)
            self.auto_weights = torch.where(total > 0, new, self.auto_weights)
        self._sums = torch.zeros_like(self._sums)
        self._steps = 0

    def state_dict(self) -> dict[str, Tensor]:
        return {"auto_weights": self.auto_weights.cpu()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.auto_weights = state["auto_weights"].float()


def _normalise(weights: Tensor) -> Tensor:
    total = weights.sum(dim=1, keepdim=True)
    return torch.where(total > 0, weights / total.clamp(min=1e-12), torch.zeros_like(weights))


def regularization(model: nn.Module, kind: str, weight: float) -> Tensor | None:
    """TAO's kernel regulariser: weight·Σ|w| (L1) or weight·Σw² (L2) over conv kernels.

    Biases and batch-norm parameters are not regularised (Keras kernel_regularizer).
    """
    if kind == "NO_REG" or weight == 0:
        return None
    kernels = [
        m.weight for m in model.modules() if isinstance(m, nn.Conv2d) and m.weight.requires_grad
    ]
    if not kernels:
        return None
    if kind == "L1":
        return weight * torch.stack([k.abs().sum() for k in kernels]).sum()
    if kind == "L2":
        return weight * torch.stack([k.pow(2).sum() for k in kernels]).sum()
    raise ValueError(f"[training_config.regularizer.type] expected NO_REG, L1 or L2, got {kind!r}")
