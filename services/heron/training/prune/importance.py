"""TAO's filter importance: per-layer normalised kernel norms, equalised across joined layers.

TAO (`prune -n/-eq`) scores every filter by the L2 norm of its kernel, divides the scores of
one layer by their maximum (`max`) or by their own L2 norm (`L2`), and, where several layers
feed one element-wise op (a residual add) or a depthwise convolution, combines their scores
channel by channel with the equalisation criterion: `union` keeps a channel that any layer
keeps (max), `intersection` one that every layer keeps (min), or the arithmetic/geometric
mean. The group's channels under the threshold go, rounded to the granularity.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch_pruning as tp  # type: ignore[import-untyped,unused-ignore]
from torch import Tensor, nn

Normalizer = Literal["max", "L2"]
Equalization = Literal["union", "intersection", "arithmetic_mean", "geometric_mean"]
NORMALIZERS: tuple[Normalizer, ...] = ("max", "L2")
EQUALIZATIONS: tuple[Equalization, ...] = (
    "union",
    "intersection",
    "arithmetic_mean",
    "geometric_mean",
)
_TINY = 1e-12  # a layer of all-zero kernels must not divide by zero


def filter_norms(weight: Tensor) -> Tensor:
    """L2 norm of each output filter of a conv weight (out, in/groups, kh, kw)."""
    norms: Tensor = weight.detach().float().flatten(1).norm(p=2, dim=1)
    return norms


def normalize(norms: Tensor, normalizer: Normalizer) -> Tensor:
    """Scores of one layer in [0, 1] (`max`) or on the unit sphere (`L2`)."""
    scale = norms.max() if normalizer == "max" else norms.norm(p=2)
    scores: Tensor = norms / scale.clamp_min(_TINY)
    return scores


def equalize(scores: Tensor, criterion: Equalization) -> Tensor:
    """Combine (layers, channels) scores of layers joined channel by channel."""
    if criterion == "union":
        return scores.max(dim=0).values
    if criterion == "intersection":
        return scores.min(dim=0).values
    if criterion == "arithmetic_mean":
        return scores.mean(dim=0)
    return scores.clamp_min(_TINY).log().mean(dim=0).exp()


def kept_count(scores: Tensor, threshold: float, granularity: int, min_filters: int) -> int:
    """How many channels stay: those at or above `threshold`, rounded up to `granularity`.

    Never fewer than `min_filters` and never more than the layer has.
    """
    total = int(scores.numel())
    above = int((scores >= threshold).sum())
    rounded = math.ceil(above / granularity) * granularity
    return min(total, max(rounded, min_filters))


class TaoImportance(tp.importance.Importance):  # type: ignore[misc]
    """torch-pruning importance of a group: TAO's normalised, equalised kernel norms.

    Only convolutions whose *output* channels the group prunes carry a score (as in TAO, input
    channels and BatchNorm follow). Each layer is normalised over all its filters before its
    scores are mapped onto the group's root channels.
    """

    def __init__(self, normalizer: Normalizer, equalization: Equalization) -> None:
        self.normalizer = normalizer
        self.equalization = equalization

    @torch.no_grad()
    def __call__(self, group: Any) -> Tensor:
        rows: list[Tensor] = []
        size = len(group[0].idxs)
        graph = group._DG
        for item in group:
            layer = item.dep.target.module
            if not isinstance(layer, nn.Conv2d) or not graph.is_out_channel_pruning_fn(
                item.dep.handler
            ):
                continue
            layer_scores = normalize(filter_norms(layer.weight), self.normalizer)
            row = torch.full((size,), float("nan"))
            row[torch.tensor(item.root_idxs)] = layer_scores[torch.tensor(item.idxs)]
            rows.append(row)
        if not rows:
            raise ValueError(f"pruning group of {group[0].dep.target.name} has no convolution")
        stacked = torch.stack(rows)
        # A layer that covers only part of the root channels (a concat) must not vote on the
        # others: fill its gaps with the mean of the layers that do.
        fill = stacked.nanmean(dim=0).expand_as(stacked)
        return equalize(torch.where(stacked.isnan(), fill, stacked), self.equalization)
