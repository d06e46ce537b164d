"""The DetectNet_v2 output grid: cell centres, bbox decode and its inverse (shared with training).

Convention (TAO `objective_set { bbox { scale offset } }`, DeepStream's DetectNet_v2 parser):

- `output_cov` has shape `(C, gh, gw)` (or `(B, C, gh, gw)`): sigmoid coverage per class and cell.
- `output_bbox` has shape `(4*C, gh, gw)` (or batched), class-major:
  `[c0_x1, c0_y1, c0_x2, c0_y2, c1_x1, ...]`.
- Cell `(gx, gy)` has its centre at `cx = gx * stride + offset`, `cy = gy * stride + offset`
  (pixels of the network input; stride 16 turns 960×544 into a 60×34 grid).
- A cell's four numbers `o` decode to an absolute box
  `x1 = cx - scale*o_x1, y1 = cy - scale*o_y1, x2 = cx + scale*o_x2, y2 = cy + scale*o_y2`;
  DeepStream writes the same as `(o - c/scale) * -scale`. `encode_bbox` is the exact inverse,
  which the training target encoder uses so that training and serving cannot disagree.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field

FloatArray = NDArray[np.float32]

DEFAULT_STRIDE = 16
DEFAULT_BBOX_SCALE = 35.0
DEFAULT_BBOX_OFFSET = 0.5


class GridShapeError(ValueError):
    """Model outputs whose shapes do not form a DetectNet_v2 grid."""


class BBoxCoding(BaseModel):
    """How grid numbers map to pixels: output stride and TAO's bbox `scale` / `offset`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stride: int = Field(DEFAULT_STRIDE, gt=0, description="Input pixels per output cell.")
    scale: float = Field(DEFAULT_BBOX_SCALE, gt=0, description="objective_set.bbox.scale")
    offset: float = Field(DEFAULT_BBOX_OFFSET, description="objective_set.bbox.offset")


def grid_centers(
    grid_w: int, grid_h: int, stride: int = DEFAULT_STRIDE, offset: float = DEFAULT_BBOX_OFFSET
) -> tuple[FloatArray, FloatArray]:
    """Cell centres in input pixels: `cx` of shape `(grid_w,)` and `cy` of shape `(grid_h,)`.

    Broadcast as `cx[None, :]`, `cy[:, None]` to get `(grid_h, grid_w)` planes.
    """
    if grid_w <= 0 or grid_h <= 0 or stride <= 0:
        raise GridShapeError(
            f"grid_w, grid_h and stride must be > 0, but got {grid_w}, {grid_h}, {stride}"
        )
    cx = np.arange(grid_w, dtype=np.float32) * np.float32(stride) + np.float32(offset)
    cy = np.arange(grid_h, dtype=np.float32) * np.float32(stride) + np.float32(offset)
    return cx, cy


def as_batched(cov: ArrayLike, bbox: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Both outputs as `(B, C, gh, gw)` and `(B, 4*C, gh, gw)` float32, or a clear error."""
    c = np.asarray(cov, dtype=np.float32)
    b = np.asarray(bbox, dtype=np.float32)
    if c.ndim == 3:
        c = c[None]
    if b.ndim == 3:
        b = b[None]
    if c.ndim != 4:
        raise GridShapeError(
            f"output_cov must have shape (C, gh, gw) or (B, C, gh, gw), but got {c.shape}"
        )
    expected = (c.shape[0], 4 * c.shape[1], c.shape[2], c.shape[3])
    if b.shape != expected:
        raise GridShapeError(
            f"output_bbox must have shape {expected} (4 numbers per class of output_cov "
            f"{c.shape}), but got {np.shape(bbox)}"
        )
    if c.shape[1] == 0 or c.shape[2] == 0 or c.shape[3] == 0:
        raise GridShapeError(f"output_cov has an empty class or grid axis: shape {c.shape}")
    return c, b


def decode_bbox(bbox: ArrayLike, coding: BBoxCoding | None = None) -> FloatArray:
    """Every cell's absolute box: `(B, 4*C, gh, gw)` (or unbatched) → `(B, C, 4, gh, gw)` xyxy."""
    coding = coding or BBoxCoding()
    b = np.asarray(bbox, dtype=np.float32)
    if b.ndim == 3:
        b = b[None]
    if b.ndim != 4 or b.shape[1] % 4:
        raise GridShapeError(
            f"output_bbox must have shape (B, 4*C, gh, gw) or (4*C, gh, gw), but got {b.shape}"
        )
    n, ch, gh, gw = b.shape
    o = b.reshape(n, ch // 4, 4, gh, gw)
    cx, cy = grid_centers(gw, gh, coding.stride, coding.offset)
    scale = np.float32(coding.scale)
    return np.stack(
        [
            cx[None, None, None, :] - scale * o[:, :, 0],
            cy[None, None, :, None] - scale * o[:, :, 1],
            cx[None, None, None, :] + scale * o[:, :, 2],
            cy[None, None, :, None] + scale * o[:, :, 3],
        ],
        axis=2,
    ).astype(np.float32)


def encode_bbox(
    boxes: ArrayLike, grid_w: int, grid_h: int, coding: BBoxCoding | None = None
) -> FloatArray:
    """The inverse of `decode_bbox` for given boxes: `(N, 4)` xyxy → `(N, 4, grid_h, grid_w)`.

    Entry `[n, :, gy, gx]` is what cell `(gx, gy)` must output so that it decodes to box `n`;
    a target encoder writes it into the cells that the box covers.
    """
    coding = coding or BBoxCoding()
    xyxy = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    cx, cy = grid_centers(grid_w, grid_h, coding.stride, coding.offset)
    x1, y1, x2, y2 = (xyxy[:, i, None, None] for i in range(4))
    inv = np.float32(1.0 / coding.scale)
    planes = np.broadcast_arrays(
        (cx[None, None, :] - x1) * inv,
        (cy[None, :, None] - y1) * inv,
        (x2 - cx[None, None, :]) * inv,
        (y2 - cy[None, :, None]) * inv,
    )
    return np.stack(planes, axis=1).astype(np.float32)
