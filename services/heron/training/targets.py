"""The bbox rasteriser: ground-truth boxes → coverage and bbox target grids (TAO's rules).

Per box, in output-grid units (pixels / stride, 16 in TAO), as TAO's `bbox_from_rumpy_params` does:
- coverage centre  c = min + cov_center · size;
- semi-axes s = distance from c to the nearer box edge, coverage radii r = cov_radius · s,
  grown to `bbox_min_radius` cells keeping the aspect ratio;
- deadzone radii d = (1 − deadzone_radius)·r + deadzone_radius·s, at least r.
A cell's coverage is the fraction of its S×S sub-samples inside the coverage ellipse (TAO
supersamples the same way), so edge cells get soft targets.

Overlaps, per class: boxes are drawn in ascending order of their bottom edge (ymax) — TAO's
depth approximation: the lower box in the image is nearer the camera — and a later box owns
every cell its deadzone ellipse touches. So the nearer box wins; where its deadzone ring
(inside the deadzone ellipse, outside the coverage ellipse) lies over a farther box, that
box's coverage is cleared. Ring cells get loss mask 0: they are neither object nor background.

Targets where coverage > 0 (cell centre cx = gx·stride + offset, cy likewise, pixels):
    x1 = (cx − x1)/scale, y1 = (cy − y1)/scale, x2 = (x2 − cx)/scale, y2 = (y2 − cy)/scale
and `cov_norm` = coverage / max(4·rx·ry, 1): the bbox loss weight, so large and small objects
weigh alike (TAO's inv_bbox_area).

Everything is vectorised over all boxes of a batch; it runs where the batch lives (GPU).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from heron.training.settings import TrainingSettings


@dataclass(frozen=True)
class Targets:
    cov: Tensor  # (N, C, gh, gw) coverage in [0, 1]
    bbox: Tensor  # (N, 4C, gh, gw) class-major, in units of `scale` pixels
    cov_norm: Tensor  # (N, C, gh, gw) bbox loss weight
    mask: Tensor  # (N, C, gh, gw) 0 for deadzone cells, 1 elsewhere


class Rasterizer:
    """Draws targets for one model's grid; build once, call per batch."""

    def __init__(self, settings: TrainingSettings, supersample: int = 3) -> None:
        self.num_classes = len(settings.classes)
        self.grid_h, self.grid_w = settings.model.grid
        self.stride = settings.model.output_stride
        self.scale = settings.model.bbox_scale
        self.offset = settings.model.bbox_offset
        self.deadzone = settings.deadzone_radius
        self.supersample = supersample
        params = [settings.raster_for(name) for name in settings.classes]
        self._params = torch.tensor(
            [
                [p.cov_center_x, p.cov_center_y, p.cov_radius_x, p.cov_radius_y, p.bbox_min_radius]
                for p in params
            ],
            dtype=torch.float32,
        )

    def __call__(self, boxes: Tensor, labels: Tensor) -> Targets:
        """boxes (N, M, 4) x1 y1 x2 y2 in input pixels; labels (N, M) class index, −1 = none."""
        n = boxes.shape[0]
        device = boxes.device
        valid = labels >= 0
        image_index = torch.arange(n, device=device).unsqueeze(1).expand_as(labels)[valid]
        cls = labels[valid].long()
        box = boxes[valid].float()
        c, gh, gw = self.num_classes, self.grid_h, self.grid_w
        zeros = torch.zeros(n, c, gh, gw, device=device)
        if box.shape[0] == 0:
            return Targets(zeros, torch.zeros(n, 4 * c, gh, gw, device=device), zeros, zeros + 1)
        if self._params.device != device:  # once, not a host→device copy per batch
            self._params = self._params.to(device)
        params = self._params[cls]
        centre, cov_r, dead_r, inv_area = _ellipses(box / self.stride, params, self.deadzone)
        cov_frac, dead_touch = self._sample(centre, cov_r, dead_r)  # (B, G) each
        owner = self._owners(box, image_index * c + cls, dead_touch, n * c)  # (N·C, G)
        return self._fill(box, owner, cov_frac, inv_area, n)

    def _sample(self, centre: Tensor, cov_r: Tensor, dead_r: Tensor) -> tuple[Tensor, Tensor]:
        """Per box and cell: fraction of sub-samples in the coverage ellipse, and whether any
        sub-sample lies in the deadzone ellipse."""
        s = self.supersample
        device = centre.device
        sub = (torch.arange(s, device=device, dtype=torch.float32) + 0.5) / s
        xs = (torch.arange(self.grid_w, device=device).unsqueeze(1) + sub).reshape(-1)
        ys = (torch.arange(self.grid_h, device=device).unsqueeze(1) + sub).reshape(-1)
        # (B, gh·s, gw·s) normalised distances, then folded into (B, G, s·s)
        dx = (xs.view(1, 1, -1) - centre[:, 0].view(-1, 1, 1)) ** 2
        dy = (ys.view(1, -1, 1) - centre[:, 1].view(-1, 1, 1)) ** 2
        in_cov = dx / cov_r[:, 0].view(-1, 1, 1) ** 2 + dy / cov_r[:, 1].view(-1, 1, 1) ** 2 < 1
        in_dead = dx / dead_r[:, 0].view(-1, 1, 1) ** 2 + dy / dead_r[:, 1].view(-1, 1, 1) ** 2 < 1
        b = centre.shape[0]
        shape = (b, self.grid_h, s, self.grid_w, s)
        cov_frac = in_cov.view(shape).float().mean(dim=(2, 4)).view(b, -1)
        dead_touch = in_dead.view(shape).any(dim=4).any(dim=2).view(b, -1)
        return cov_frac, dead_touch | (cov_frac > 0)

    @staticmethod
    def _owners(box: Tensor, plane: Tensor, touch: Tensor, planes: int) -> Tensor:
        """Index of the box that owns each (image·class plane, cell), −1 for none."""
        b = box.shape[0]
        # Drawing order: ascending ymax, ties by input order; a later rank wins the cell.
        order = torch.argsort(box[:, 3] * (b + 1) + torch.arange(b, device=box.device) / b)
        rank = torch.empty_like(order)
        rank[order] = torch.arange(b, device=box.device)
        key = torch.where(touch, (rank + 1).unsqueeze(1), torch.zeros_like(touch, dtype=rank.dtype))
        best = torch.zeros(planes, touch.shape[1], dtype=rank.dtype, device=box.device)
        best.scatter_reduce_(0, plane.unsqueeze(1).expand_as(key), key, reduce="amax")
        return torch.where(best > 0, order[(best - 1).clamp(min=0)], torch.full_like(best, -1))

    def _fill(
        self, box: Tensor, owner: Tensor, cov_frac: Tensor, inv_area: Tensor, n: int
    ) -> Targets:
        c, gh, gw = self.num_classes, self.grid_h, self.grid_w
        g = gh * gw
        has = owner >= 0
        idx = owner.clamp(min=0)
        cells = torch.arange(g, device=box.device).unsqueeze(0).expand_as(idx)
        cov = torch.where(has, cov_frac[idx, cells], torch.zeros_like(cov_frac[idx, cells]))
        mask = torch.where(has & (cov == 0), 0.0, 1.0)
        cov_norm = cov * inv_area[idx]
        cx = (torch.arange(gw, device=box.device) * self.stride + self.offset).repeat(gh)
        cy = (torch.arange(gh, device=box.device) * self.stride + self.offset).repeat_interleave(gw)
        b = box[idx]  # (N·C, G, 4)
        bbox = torch.stack([cx - b[..., 0], cy - b[..., 1], b[..., 2] - cx, b[..., 3] - cy], 1)
        bbox = torch.where((cov > 0).unsqueeze(1), bbox / self.scale, torch.zeros_like(bbox))
        return Targets(
            cov=cov.view(n, c, gh, gw),
            bbox=bbox.view(n, c * 4, gh, gw),
            cov_norm=cov_norm.view(n, c, gh, gw),
            mask=mask.view(n, c, gh, gw),
        )


def _ellipses(
    box: Tensor, params: Tensor, deadzone: float
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Centre (B, 2), coverage radii (B, 2), deadzone radii (B, 2), 1/area (B,), grid units."""
    lo, hi = box[:, :2], box[:, 2:]
    frac = params[:, 0:2]
    centre = lo + frac * (hi - lo)
    semi = torch.where(frac < 0.5, centre - lo, hi - centre)
    r = (params[:, 2:4] * semi).clamp(min=0.1)  # TAO's floor against degenerate boxes
    min_r = params[:, 4]
    # Grow to bbox_min_radius keeping the aspect ratio: first along x, then along y.
    rx, ry = r[:, 0], r[:, 1]
    small = rx < min_r
    rx, ry = torch.where(small, min_r, rx), torch.where(small, min_r * ry / rx, ry)
    small = ry < min_r
    rx, ry = torch.where(small, min_r * rx / ry, rx), torch.where(small, min_r, ry)
    cov_r = torch.stack([rx, ry], 1)
    dead_r = torch.maximum((1.0 - deadzone) * cov_r + deadzone * semi, cov_r)
    inv_area = 1.0 / (4.0 * rx * ry).clamp(min=1.0)
    return centre, cov_r, dead_r, inv_area
