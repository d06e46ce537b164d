"""Structured filter pruning of DetectNet_v2 with TAO's rules, through torch-pruning.

torch-pruning's dependency graph finds which layers share channels (a convolution, its
BatchNorm and the next layer's inputs; every branch of a residual add; a depthwise
convolution and its expansion), so those are narrowed together; `TaoImportance` scores each
group the TAO way and `kept_count` decides how many channels stay. The coverage and bbox
heads' outputs are never pruned: their channels are the network's contract.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from heron.training import checkpoint as ckpt
from heron.training.model import DetectNetV2
from heron.training.prune.importance import (
    EQUALIZATIONS,
    NORMALIZERS,
    Equalization,
    Normalizer,
    TaoImportance,
    kept_count,
)
from heron.training.prune.layout import model_from_state


class PruneError(ValueError):
    """A pruning option is out of range; the message names it, what was expected and got."""


@dataclass(frozen=True)
class PruneOptions:
    """`heron prune`'s options, with TAO's defaults (`-pth 0.1 -n max -eq union -pg 8 -nf 16`).

    A dataclass, not pydantic, like `heron.training.settings`: pruning runs on the GPU
    machines where only torch, numpy and torch-pruning are installed.
    """

    threshold: float = 0.1
    normalizer: Normalizer = "max"
    equalization: Equalization = "union"
    granularity: int = 8
    min_filters: int = 16

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise PruneError(f"[--pth] expected a threshold in [0, 1], got {self.threshold}")
        if self.normalizer not in NORMALIZERS:
            raise PruneError(
                f"[--normalizer] expected one of {NORMALIZERS}, got {self.normalizer!r}"
            )
        if self.equalization not in EQUALIZATIONS:
            raise PruneError(
                f"[--equalization] expected one of {EQUALIZATIONS}, got {self.equalization!r}"
            )
        if self.granularity < 1:
            raise PruneError(f"[--granularity] expected an integer >= 1, got {self.granularity}")
        if self.min_filters < 1:
            raise PruneError(f"[--min-filters] expected an integer >= 1, got {self.min_filters}")


@dataclass(frozen=True)
class Cost:
    """Size and compute of a network at one input size (MACs: multiply-accumulates)."""

    parameters: int
    macs: int

    @property
    def flops(self) -> int:
        return 2 * self.macs


@dataclass(frozen=True)
class PruneReport:
    options: PruneOptions
    input_size: tuple[int, int]  # (width, height) the costs were counted at
    before: Cost
    after: Cost
    groups: int  # channel groups considered
    channels: dict[str, tuple[int, int]] = field(default_factory=dict)
    """conv name -> (output channels before, after), for every conv that lost channels."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["channels"] = {k: list(v) for k, v in self.channels.items()}
        data["input_size"] = list(self.input_size)
        return data


def measure(model: nn.Module, width: int, height: int) -> Cost:
    """Parameters and MACs of one (1, 3, height, width) forward pass (torch-pruning's counter)."""
    import torch_pruning as tp  # type: ignore[import-untyped,unused-ignore]

    example = torch.zeros(1, 3, height, width, device=next(model.parameters()).device)
    macs, _ = tp.utils.count_ops_and_params(model, example)
    return Cost(sum(p.numel() for p in model.parameters()), int(macs))


def prune_model(
    model: DetectNetV2, options: PruneOptions, example: Tensor
) -> tuple[int, dict[str, tuple[int, int]]]:
    """Narrow `model` in place; (groups considered, channels changed per conv)."""
    import torch_pruning as tp  # type: ignore[import-untyped,unused-ignore]

    before = {n: m.out_channels for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    was_training = model.training
    model.eval()
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=(example,))
    importance = TaoImportance(options.normalizer, options.equalization)
    # Score every group on the unpruned weights first, as TAO does in one pass.
    plans: list[tuple[Any, list[int]]] = []
    groups = list(graph.get_all_groups(ignored_layers=[model.cov, model.bbox]))
    for group in groups:
        scores = importance(group)
        keep = kept_count(scores, options.threshold, options.granularity, options.min_filters)
        if keep < scores.numel():
            order = torch.argsort(scores, descending=True, stable=True)
            plans.append((group, sorted(order[keep:].tolist())))
    for group, drop in plans:
        root = group[0].dep.target.module
        graph.get_pruning_group(root, group[0].dep.handler, drop).prune()
    model.train(was_training)
    model.backbone.out_channels = model.cov.in_channels
    after = {n: m.out_channels for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    changed = {n: (before[n], after[n]) for n in before if before[n] != after[n]}
    return len(groups), changed


def prune_checkpoint(source: Path, output: Path, options: PruneOptions) -> PruneReport:
    """Prune the network of checkpoint `source` and save it as checkpoint `output`.

    The output keeps the source's settings and stores only tensors (see `layout`); its
    `metrics["pruning"]` records the options and the before/after costs.
    """
    saved = ckpt.load(source, with_training_state=False)
    settings = saved.settings
    model = model_from_state(settings, saved.model, str(source))
    width, height = settings.model.input_width, settings.model.input_height
    before = measure(model, width, height)
    pruned = copy.deepcopy(model)
    example = torch.zeros(1, 3, height, width)
    groups, changed = prune_model(pruned, options, example)
    after = measure(pruned, width, height)
    report = PruneReport(options, (width, height), before, after, groups, changed)
    ckpt.save(
        output,
        ckpt.Checkpoint(
            settings=settings,
            model=pruned.state_dict(),
            epoch=0,  # retraining starts its own count
            step=0,
            metrics={"pruning": report.to_dict(), "source": str(source)},
        ),
    )
    return report
