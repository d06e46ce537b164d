"""`postprocess`: DetectNet_v2 outputs → per-image `Detections`, the way nvinfer does it.

Steps, in nvinfer's order: candidates (cells with coverage >= the class's pre-cluster threshold,
decoded and clipped to the network input as nvinfer's parser clips them) → per-class clustering
(`heron.postprocess.cluster.cluster`) → boxes mapped to the frame (`FrameGeometry`) → the
frame-pixel filters `detected-min/max-w/h` and `roi-top/bottom-offset`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from heron.core.boxes import clip_boxes
from heron.core.detections import Detections
from heron.postprocess.cluster import cluster
from heron.postprocess.grid import BBoxCoding, GridShapeError, as_batched, grid_centers
from heron.postprocess.params import ClusterParams

FloatArray = NDArray[np.float32]


@dataclass(frozen=True)
class FrameGeometry:
    """How network-input pixels map to frame pixels, as nvinfer's scale ratios and offsets.

    `x_frame = (x_input - offset_x) / scale_x` (and the same for y): `scale_*` is input pixels
    per frame pixel, `offset_*` the padding before the image in input pixels.
    """

    frame_width: float
    frame_height: float
    scale_x: float = 1.0
    scale_y: float = 1.0
    offset_x: float = 0.0
    offset_y: float = 0.0

    def __post_init__(self) -> None:
        for name in ("frame_width", "frame_height", "scale_x", "scale_y"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"FrameGeometry.{name} must be > 0, but got {value}")

    @classmethod
    def stretch(cls, input_size: tuple[int, int], frame_size: tuple[int, int]) -> FrameGeometry:
        """The frame was resized to the input (nvinfer `maintain-aspect-ratio=0`)."""
        (iw, ih), (fw, fh) = input_size, frame_size
        return cls(fw, fh, iw / fw, ih / fh)

    @classmethod
    def letterbox(
        cls, input_size: tuple[int, int], frame_size: tuple[int, int], symmetric: bool = False
    ) -> FrameGeometry:
        """Aspect kept, padded right/bottom (or on both sides: `symmetric-padding=1`)."""
        (iw, ih), (fw, fh) = input_size, frame_size
        ratio = min(iw / fw, ih / fh)
        pad_x = (iw - fw * ratio) / 2 if symmetric else 0.0
        pad_y = (ih - fh * ratio) / 2 if symmetric else 0.0
        return cls(fw, fh, ratio, ratio, pad_x, pad_y)

    def to_frame(self, boxes: FloatArray) -> FloatArray:
        out = boxes.astype(np.float32).copy()
        out[:, 0::2] = (out[:, 0::2] - self.offset_x) / self.scale_x
        out[:, 1::2] = (out[:, 1::2] - self.offset_y) / self.scale_y
        return out


@dataclass(frozen=True)
class Candidates:
    """Every cell above its class's threshold, in (image, class, row, column) order."""

    image: NDArray[np.int64]
    class_id: NDArray[np.int64]
    boxes: FloatArray
    scores: FloatArray


def find_candidates(
    cov: FloatArray,
    bbox: FloatArray,
    thresholds: FloatArray,
    coding: BBoxCoding,
    input_size: tuple[int, int],
) -> Candidates:
    """Decode only the cells with coverage >= threshold; clip as nvinfer's parser does."""
    n, c, gh, gw = cov.shape
    img, cls, gy, gx = np.nonzero(cov >= thresholds[None, :, None, None])
    cx, cy = grid_centers(gw, gh, coding.stride, coding.offset)
    o = bbox.reshape(n, c, 4, gh, gw)[img, cls, :, gy, gx]
    scale = np.float32(coding.scale)
    boxes = np.stack(
        [
            cx[gx] - scale * o[:, 0],
            cy[gy] - scale * o[:, 1],
            cx[gx] + scale * o[:, 2],
            cy[gy] + scale * o[:, 3],
        ],
        axis=1,
    ).astype(np.float32)
    # nvinfer clips to [0, size - 1] and then drops boxes that came out inverted.
    w, h = input_size
    boxes = clip_boxes(boxes, w - 1, h - 1)
    ok = (boxes[:, 2] >= boxes[:, 0]) & (boxes[:, 3] >= boxes[:, 1])
    return Candidates(
        img[ok].astype(np.int64), cls[ok].astype(np.int64), boxes[ok], cov[img, cls, gy, gx][ok]
    )


def _params_per_class(
    params: ClusterParams | Sequence[ClusterParams], num_classes: int
) -> list[ClusterParams]:
    if isinstance(params, ClusterParams):
        return [params] * num_classes
    per_class = list(params)
    if len(per_class) != num_classes:
        raise ValueError(
            f"params_per_class must have one ClusterParams per output_cov class "
            f"({num_classes}), but got {len(per_class)}"
        )
    return per_class


def _frames(
    frames: FrameGeometry | Sequence[FrameGeometry] | None, batch: int, size: tuple[int, int]
) -> list[FrameGeometry]:
    if frames is None:
        return [FrameGeometry(size[0], size[1])] * batch
    if isinstance(frames, FrameGeometry):
        return [frames] * batch
    per_image = list(frames)
    if len(per_image) != batch:
        raise ValueError(
            f"frames must have one FrameGeometry per image ({batch}), but got {len(per_image)}"
        )
    return per_image


def frame_filter(
    boxes: FloatArray, params: ClusterParams, frame: FrameGeometry
) -> NDArray[np.bool_]:
    """nvinfer's per-class filters on boxes already in frame pixels."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    keep = (w >= params.detected_min_w) & (h >= params.detected_min_h)
    if params.detected_max_w > 0:
        keep &= w <= params.detected_max_w
    if params.detected_max_h > 0:
        keep &= h <= params.detected_max_h
    keep &= boxes[:, 1] >= params.roi_top_offset
    keep &= boxes[:, 3] <= frame.frame_height - params.roi_bottom_offset
    return keep


def postprocess(
    cov: ArrayLike,
    bbox: ArrayLike,
    params_per_class: ClusterParams | Sequence[ClusterParams],
    *,
    coding: BBoxCoding | None = None,
    input_size: tuple[int, int] | None = None,
    frames: FrameGeometry | Sequence[FrameGeometry] | None = None,
) -> list[Detections]:
    """Per-image detections from `output_cov` `(B, C, gh, gw)` and `output_bbox` `(B, 4C, gh, gw)`.

    Unbatched `(C, gh, gw)` inputs give a one-element list. `input_size` (width, height) is the
    network input, by default the grid times the stride. Without `frames` the boxes stay in
    input pixels; with them they are mapped to each frame before the size/ROI filters.
    """
    coding = coding or BBoxCoding()
    c, b = as_batched(cov, bbox)
    batch, num_classes, gh, gw = c.shape
    size = input_size or (gw * coding.stride, gh * coding.stride)
    if size[0] <= 0 or size[1] <= 0:
        raise GridShapeError(f"input_size must be positive (width, height), but got {size}")
    per_class = _params_per_class(params_per_class, num_classes)
    geometry = _frames(frames, batch, size)
    thresholds = np.asarray([p.pre_cluster_threshold for p in per_class], np.float32)
    cand = find_candidates(c, b, thresholds, coding, size)
    # Candidates are sorted by (image, class): one searchsorted finds every slice.
    key = cand.image * num_classes + cand.class_id
    edges = np.searchsorted(key, np.arange(batch * num_classes + 1))
    results = []
    for i in range(batch):
        parts = []
        for k, params in enumerate(per_class):
            lo, hi = edges[i * num_classes + k], edges[i * num_classes + k + 1]
            if lo == hi:
                continue
            boxes, scores = cluster(cand.boxes[lo:hi], cand.scores[lo:hi], params)
            boxes = geometry[i].to_frame(boxes)
            keep = frame_filter(boxes, params, geometry[i])
            ids = np.full(int(keep.sum()), k, np.int64)
            parts.append(Detections(boxes[keep], scores[keep], ids))
        results.append(Detections.concat(parts))
    return results
