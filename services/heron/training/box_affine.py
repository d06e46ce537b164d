"""Boxes under the affine maps of the device augmentation (warps, mosaic tiles), and the
random draws both take their parameters from. Pure tensor code, batched, on any device."""

from __future__ import annotations

import torch
from torch import Tensor


def uniform(n: int, lo: float, hi: float, gen: torch.Generator, device: torch.device) -> Tensor:
    """`n` draws from U(lo, hi) with the caller's generator."""
    return lo + (hi - lo) * torch.rand(n, generator=gen, device=device)


def clip_boxes(boxes: Tensor, width: int, height: int) -> Tensor:
    """Boxes (…, 4) x1 y1 x2 y2 clipped to a width × height image."""
    lo = torch.zeros(4, device=boxes.device, dtype=boxes.dtype)
    hi = torch.tensor([width, height, width, height], device=boxes.device, dtype=boxes.dtype)
    return torch.minimum(torch.maximum(boxes, lo), hi)


def move_boxes(boxes: Tensor, forward: Tensor) -> Tensor:
    """Boxes (N, M, 4) through affine maps (N, 2, 3): the axis-aligned hull of their moved
    corners."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    corners = torch.stack(
        [
            torch.stack([x1, y1], -1),
            torch.stack([x2, y1], -1),
            torch.stack([x1, y2], -1),
            torch.stack([x2, y2], -1),
        ],
        dim=2,
    )  # (N, M, 4, 2)
    moved = corners @ forward[:, None, :, :2].transpose(-1, -2) + forward[:, None, None, :, 2]
    return torch.cat([moved.amin(dim=2), moved.amax(dim=2)], dim=-1)
