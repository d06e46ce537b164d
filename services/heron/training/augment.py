"""Batched augmentation on the device: one affine warp and one colour matrix per image.

Spatial (`spatial_augmentation`): horizontal/vertical flip, zoom about the image centre,
rotation, translation in pixels — composed into one 2×3 matrix per image, applied to the
pixels with `grid_sample` and to the boxes through their four corners (the axis-aligned hull
of the moved corners). Boxes are clipped to the image and dropped when narrower than
`min_bbox_width` or lower than `min_bbox_height` (labels become −1).

Mosaic (Heron's `mosaic_probability`, `mosaic_min_scale`; `heron.training.mosaic`): an image
becomes four of its batch. It multiplies the faces and backgrounds an image shows, which is
what 553 training images lack most. A mosaic is made and warped in one resampling, then
coloured like any image.

Colour (`color_augmentation`, TAO's meaning): hue rotation about the grey axis by up to
±hue_rotation_max degrees, saturation scaled by 1 ± saturation_shift_max, contrast scaled by
1 ± contrast_scale_max about contrast_center, and a per-channel shift of stddev
color_shift_stddev — one 3×3 matrix plus offset per image.

Everything runs on the tensors' device with the caller's generator, so a batch of 64
960×544 images costs a few milliseconds on a GPU and nothing is done per image in Python.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import functional

from heron.evaluation.images import to_float
from heron.training import mosaic
from heron.training.box_affine import clip_boxes, move_boxes
from heron.training.box_affine import uniform as _uniform
from heron.training.settings import AugmentSettings

LUMA = (0.299, 0.587, 0.114)


def augment(
    images: Tensor,
    boxes: Tensor,
    labels: Tensor,
    *,
    aug: AugmentSettings,
    gen: torch.Generator,
    mosaic_on: bool = True,
) -> tuple[Tensor, Tensor, Tensor]:
    """uint8 images (N, 3, H, W), boxes (N, M, 4) pixels, labels (N, M) → augmented float
    images in [0, 1], moved boxes and labels (−1 where a box was dropped); with mosaics the
    box axis grows to 4M."""
    x = to_float(images)
    n, _, h, w = x.shape
    mosaics = None
    if mosaic_on and aug.mosaic_probability and n > 1:
        mosaics = mosaic.plan(
            n,
            (w, h),
            probability=aug.mosaic_probability,
            min_scale=aug.mosaic_min_scale,
            gen=gen,
            device=x.device,
        )
        boxes, labels = mosaic.move_boxes(boxes, labels, mosaics, (w, h))
    forward = None
    if _has_spatial(aug):  # decided from the settings: no device sync per step
        forward = _spatial_matrices(n, (w, h), aug, gen, x.device)
        boxes = move_boxes(boxes, forward)
    if mosaics is not None:
        x = mosaic.sample(x, mosaics, forward)  # mosaic and warp in one resampling
    elif forward is not None:
        x = _warp(x, forward)
    boxes, labels = filter_boxes(
        boxes, labels, width=w, height=h, min_w=aug.min_bbox_width, min_h=aug.min_bbox_height
    )
    x = _colour(x, aug, gen)
    return x, boxes, labels


def filter_boxes(
    boxes: Tensor, labels: Tensor, *, width: int, height: int, min_w: float, min_h: float
) -> tuple[Tensor, Tensor]:
    """Clip boxes to the image; labels of boxes then smaller than the minimum become −1."""
    boxes = clip_boxes(boxes, width, height)
    keep = (boxes[..., 2] - boxes[..., 0] >= min_w) & (boxes[..., 3] - boxes[..., 1] >= min_h)
    keep &= (boxes[..., 2] > boxes[..., 0]) & (boxes[..., 3] > boxes[..., 1])
    return boxes, torch.where(keep, labels, torch.full_like(labels, -1))


def _has_spatial(aug: AugmentSettings) -> bool:
    return bool(
        aug.hflip_probability
        or aug.vflip_probability
        or aug.zoom_min != 1.0
        or aug.zoom_max != 1.0
        or aug.translate_max_x
        or aug.translate_max_y
        or (aug.rotate_rad_max and aug.rotate_probability)
    )


def _spatial_matrices(
    n: int, size: tuple[int, int], aug: AugmentSettings, gen: torch.Generator, device: torch.device
) -> Tensor:
    """Forward maps input pixel → output pixel, (N, 2, 3); size is (width, height)."""
    w, h = size
    flip_x = torch.where(_uniform(n, 0, 1, gen, device) < aug.hflip_probability, -1.0, 1.0)
    flip_y = torch.where(_uniform(n, 0, 1, gen, device) < aug.vflip_probability, -1.0, 1.0)
    zoom = _uniform(n, aug.zoom_min, aug.zoom_max, gen, device)
    angle = _uniform(n, -aug.rotate_rad_max, aug.rotate_rad_max, gen, device)
    angle = torch.where(_uniform(n, 0, 1, gen, device) < aug.rotate_probability, angle, 0.0)
    tx = _uniform(n, -aug.translate_max_x, aug.translate_max_x, gen, device)
    ty = _uniform(n, -aug.translate_max_y, aug.translate_max_y, gen, device)
    cos, sin = torch.cos(angle) * zoom, torch.sin(angle) * zoom
    # out = R·Z·F·(p − centre) + centre + t
    a = torch.stack([cos * flip_x, -sin * flip_y, sin * flip_x, cos * flip_y], 1).view(n, 2, 2)
    centre = torch.tensor([w / 2, h / 2], device=device)
    shift = centre - (a @ centre) + torch.stack([tx, ty], 1)
    return torch.cat([a, shift.unsqueeze(2)], dim=2)


def _warp(x: Tensor, forward: Tensor) -> Tensor:
    """Resample images so output pixel p shows input pixel forward⁻¹(p); outside is black."""
    n, _, h, w = x.shape
    a, t = forward[:, :, :2], forward[:, :, 2:]
    inv_a = torch.linalg.inv(a)
    inv_t = -inv_a @ t
    # grid_sample works in normalised coordinates u = 2p/size − 1 (align_corners=False).
    size = torch.tensor([w, h], device=x.device, dtype=x.dtype)
    s = torch.diag_embed((2.0 / size).expand(n, 2))
    s_inv = torch.diag_embed((size / 2.0).expand(n, 2))
    theta_a = s @ inv_a @ s_inv
    theta_t = s @ (inv_a @ s_inv @ torch.ones(n, 2, 1, device=x.device) + inv_t) - 1.0
    theta = torch.cat([theta_a, theta_t], dim=2)
    grid = functional.affine_grid(theta, [n, 3, h, w], align_corners=False)
    return functional.grid_sample(
        x, grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )


def _colour(x: Tensor, aug: AugmentSettings, gen: torch.Generator) -> Tensor:
    n, device = x.shape[0], x.device
    if not (
        aug.hue_rotation_max
        or aug.saturation_shift_max
        or aug.contrast_scale_max
        or aug.color_shift_stddev
    ):
        return x
    hue = _uniform(n, -aug.hue_rotation_max, aug.hue_rotation_max, gen, device) * math.pi / 180
    sat = 1.0 + _uniform(n, -aug.saturation_shift_max, aug.saturation_shift_max, gen, device)
    con = 1.0 + _uniform(n, -aug.contrast_scale_max, aug.contrast_scale_max, gen, device)
    matrix = _hue_matrix(hue) @ _saturation_matrix(sat)  # (N, 3, 3)
    matrix = matrix * con.view(n, 1, 1)
    offset = (1.0 - con).view(n, 1) * aug.contrast_center
    if aug.color_shift_stddev:
        offset = offset + aug.color_shift_stddev * torch.randn(n, 3, generator=gen, device=device)
    else:
        offset = offset.expand(n, 3)
    out = torch.einsum("nij,njhw->nihw", matrix, x) + offset.view(n, 3, 1, 1)
    return out.clamp_(0.0, 1.0)


def _hue_matrix(angle: Tensor) -> Tensor:
    """Rotation by `angle` about the grey axis (1, 1, 1)/√3 (Rodrigues)."""
    n = angle.shape[0]
    # cross-product matrix of the unit grey axis (1, 1, 1)/√3
    kx = torch.tensor([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]], device=angle.device)
    kx = kx / math.sqrt(3.0)
    eye = torch.eye(3, device=angle.device).expand(n, 3, 3)
    sin, cos = torch.sin(angle).view(n, 1, 1), torch.cos(angle).view(n, 1, 1)
    return eye + sin * kx + (1.0 - cos) * (kx @ kx)


def _saturation_matrix(factor: Tensor) -> Tensor:
    """Blend towards the luma grey: factor 1 keeps colours, 0 gives greyscale."""
    n = factor.shape[0]
    luma = torch.tensor(LUMA, device=factor.device).expand(3, 3)
    eye = torch.eye(3, device=factor.device)
    f = factor.view(n, 1, 1)
    return f * eye + (1.0 - f) * luma
