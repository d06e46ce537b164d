"""Mosaic augmentation (Heron's `mosaic_probability`, `mosaic_min_scale`), on the device.

A mosaic image is four images — itself and the next three of its batch — each scaled by one
factor in [mosaic_min_scale, 1] and placed so that their corners meet at a random point of
the middle half: tile k (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right) ends or
starts at that point, so every tile stays in its own quadrant and no two overlap. Boxes that
the seams cut to under a quarter of their area are dropped.

The pixels are resampled once, together with the spatial augmentation that follows
(`sample`): the four source images go into one 2×2 layout with zero gutters, and every
output pixel is mapped back through the spatial warp and its quadrant's tile to a point of
that layout. Measured for MobileNetV2 at 960×544 on an H100, batch 32, where an epoch takes
1.05 s without mosaics:
- four separate resamplings plus the warp made an epoch 1.27 s;
- one resampling makes it 1.15 s; augmenting takes 10.6 ms per batch, against 4.1 ms without
  mosaics.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional

from heron.training import box_affine

MIN_VISIBLE = 0.25
"""A box cut by a mosaic's seams keeps its label only with this share of its area left."""
GUTTER = 1
"""Zero pixels around each tile of the layout: bilinear samples at an image's edge blend with
black, as `grid_sample`'s zero padding does, never with the neighbouring tile."""


@dataclass(frozen=True)
class MosaicPlan:
    """Which images of a batch are mosaics, and where each tile goes."""

    use: Tensor  # (N,) bool
    tiles: Tensor  # (N, 4, 2, 3): tile k's source pixel → mosaic pixel (scale, then shift)
    centre: Tensor  # (N, 2): where the four tiles meet


def plan(
    n: int,
    size: tuple[int, int],
    *,
    probability: float,
    min_scale: float,
    gen: torch.Generator,
    device: torch.device,
) -> MosaicPlan:
    """Draw mosaics for a batch of `n` images of `size` (width, height)."""
    w, h = size
    use = box_affine.uniform(n, 0, 1, gen, device) < probability
    scale = box_affine.uniform(n, min_scale, 1.0, gen, device)
    cx = box_affine.uniform(n, 0.25 * w, 0.75 * w, gen, device)
    cy = box_affine.uniform(n, 0.25 * h, 0.75 * h, gen, device)
    zero = torch.zeros_like(scale)
    tiles = []
    for k in range(4):
        right, below = k % 2, k // 2
        # left tiles end at the meeting point, right tiles start there (likewise vertically)
        tx = cx if right else cx - scale * w
        ty = cy if below else cy - scale * h
        tiles.append(torch.stack([scale, zero, tx, zero, scale, ty], 1).view(n, 2, 3))
    return MosaicPlan(use, torch.stack(tiles, 1), torch.stack([cx, cy], 1))


def sources(x: Tensor, k: int) -> Tensor:
    """The images shown in tile k: output i shows image i + k of the batch."""
    return torch.roll(x, shifts=-k, dims=0)


def move_boxes(
    boxes: Tensor, labels: Tensor, mosaic: MosaicPlan, size: tuple[int, int]
) -> tuple[Tensor, Tensor]:
    """Boxes (N, M, 4) and labels (N, M) → (N, 4M, 4) and (N, 4M) in mosaic pixels; slots of
    images that are no mosaic keep their own boxes first and −1 after."""
    w, h = size
    n = boxes.shape[0]
    keep = mosaic.use.view(n, 1)
    all_boxes, all_labels = [], []
    for k in range(4):
        moved = box_affine.move_boxes(sources(boxes, k), mosaic.tiles[:, k])
        lab = sources(labels, k)
        visible = _area(box_affine.clip_boxes(moved, w, h)) >= MIN_VISIBLE * _area(moved)
        lab = torch.where(visible & keep, lab, torch.full_like(lab, -1))
        if k == 0:  # an image that is no mosaic keeps its own boxes
            moved = torch.where(keep.unsqueeze(2), moved, boxes)
            lab = torch.where(keep, lab, labels)
        all_boxes.append(moved)
        all_labels.append(lab)
    return torch.cat(all_boxes, dim=1), torch.cat(all_labels, dim=1)


def sample(x: Tensor, mosaic: MosaicPlan, forward: Tensor | None) -> Tensor:
    """Float images (N, 3, H, W) → mosaics where planned, then warped by `forward` (N, 2, 3:
    mosaic pixel → output pixel; None for no warp), in one bilinear resampling."""
    n, c, h, w = x.shape
    g = GUTTER
    layout = x.new_zeros(n, c, 2 * (h + 2 * g), 2 * (w + 2 * g))
    for k in range(4):
        top, left = (k // 2) * (h + 2 * g) + g, (k % 2) * (w + 2 * g) + g
        layout[:, :, top : top + h, left : left + w] = sources(x, k)
    q = _output_points(n, h, w, forward, x.device)  # (N, H, W, 2) mosaic pixels
    cx, cy = mosaic.centre[:, 0].view(n, 1, 1), mosaic.centre[:, 1].view(n, 1, 1)
    tile = (q[..., 0] >= cx).long() + 2 * (q[..., 1] >= cy).long()
    tile = torch.where(mosaic.use.view(n, 1, 1), tile, torch.zeros_like(tile))
    # tile k's inverse: source = (q − shift) / scale; an identity for images that are no mosaic
    scale = torch.where(
        mosaic.use, mosaic.tiles[:, 0, 0, 0], torch.ones_like(mosaic.use, dtype=x.dtype)
    )
    shift = mosaic.tiles[:, :, :, 2]  # (N, 4, 2)
    shift = torch.where(mosaic.use.view(n, 1, 1), shift, torch.zeros_like(shift))
    picked = torch.gather(shift, 1, tile.view(n, -1, 1).expand(-1, -1, 2)).view(n, h, w, 2)
    u = (q - picked) / scale.view(n, 1, 1, 1)
    # outside its image (beyond the bilinear footprint): black, never another tile
    inside = (u[..., 0] > -1) & (u[..., 0] < w + 1) & (u[..., 1] > -1) & (u[..., 1] < h + 1)
    offset = torch.stack([(tile % 2) * (w + 2 * g) + g, (tile // 2) * (h + 2 * g) + g], -1)
    points = u + offset.to(u.dtype)
    size = torch.tensor([2 * (w + 2 * g), 2 * (h + 2 * g)], device=x.device, dtype=u.dtype)
    grid = torch.where(inside.unsqueeze(-1), 2.0 * points / size - 1.0, torch.full_like(u, -2.0))
    return functional.grid_sample(
        layout, grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )


def _output_points(n: int, h: int, w: int, forward: Tensor | None, device: torch.device) -> Tensor:
    """Pixel centres of the output, mapped back through `forward` (or as they are)."""
    ys = torch.arange(h, device=device, dtype=torch.float32) + 0.5
    xs = torch.arange(w, device=device, dtype=torch.float32) + 0.5
    p = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).expand(n, h, w, 2)
    if forward is None:
        return p
    inv_a = torch.linalg.inv(forward[:, :, :2])  # (N, 2, 2)
    t = forward[:, :, 2]  # (N, 2)
    return torch.einsum("nij,nhwj->nhwi", inv_a, p - t.view(n, 1, 1, 2))


def _area(boxes: Tensor) -> Tensor:
    width = (boxes[..., 2] - boxes[..., 0]).clamp(min=0)
    return width * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)
