"""The rasteriser: targets decode back to the boxes; overlaps and deadzones follow TAO's rules."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from heron.core.boxes import pairwise_iou
from heron.postprocess import BBoxCoding, ClusterParams, postprocess
from heron.training.settings import ModelSettings, RasterClass, TrainingSettings
from heron.training.targets import Rasterizer


def settings(
    width: int = 256, height: int = 128, stride: int = 16, **raster: float
) -> TrainingSettings:
    params = RasterClass(**raster) if raster else RasterClass()
    return TrainingSettings(
        classes=("a", "b"),
        model=ModelSettings(input_width=width, input_height=height, output_stride=stride),
        raster={"a": params, "b": params},
        deadzone_radius=0.5,
    )


@pytest.mark.parametrize(
    ("boxes", "labels"),
    [
        ([[20.0, 10.0, 80.0, 70.0]], [0]),
        ([[20.0, 10.0, 80.0, 70.0], [150.0, 40.0, 230.0, 120.0]], [0, 1]),
        (
            [[10.0, 20.0, 40.0, 50.0], [140.0, 30.0, 250.0, 100.0], [90.0, 80.0, 130.0, 126.0]],
            [1, 1, 0],
        ),
        ([[3.0, 3.0, 14.0, 12.0]], [1]),  # smaller than one cell: bbox_min_radius keeps it
    ],
)
@pytest.mark.parametrize("stride", [16, 8])
def test_targets_decode_back_to_the_boxes(
    boxes: list[list[float]], labels: list[int], stride: int
) -> None:
    s = settings(stride=stride)
    targets = Rasterizer(s)(torch.tensor([boxes]), torch.tensor([labels]))
    assert targets.cov.shape[-2:] == (128 // stride, 256 // stride)
    params = ClusterParams.from_tao_clustering(
        coverage_threshold=0.5, dbscan_eps=0.3, dbscan_min_samples=1
    )
    coding = BBoxCoding(stride=stride, scale=35, offset=0.5)
    (found,) = postprocess(targets.cov.numpy(), targets.bbox.numpy(), params, coding=coding)
    assert len(found) == len(boxes)
    for box, label in zip(boxes, labels, strict=True):
        same = found.xyxy[found.class_ids == label]
        best = pairwise_iou(np.array([box]), same, np.float64).max()
        assert best > 0.99


def test_bbox_targets_follow_the_shared_convention() -> None:
    """Inside the coverage region every cell encodes (cx − x1)/scale ... with cx = 16·gx + 0.5."""
    box = [40.0, 20.0, 120.0, 100.0]
    t = Rasterizer(settings())(torch.tensor([[box]]), torch.tensor([[0]]))
    gy, gx = 3, 5  # a cell inside the box
    cx, cy = gx * 16 + 0.5, gy * 16 + 0.5
    expected = [(cx - box[0]) / 35, (cy - box[1]) / 35, (box[2] - cx) / 35, (box[3] - cy) / 35]
    assert t.cov[0, 0, gy, gx] > 0
    np.testing.assert_allclose(t.bbox[0, 0:4, gy, gx].numpy(), expected, rtol=1e-5)
    assert t.cov[0, 1].sum() == 0 and t.bbox[0, 4:].abs().sum() == 0  # other class untouched


def test_lower_box_wins_where_boxes_overlap() -> None:
    """TAO draws in ascending ymax: the box lower in the image (nearer) owns shared cells."""
    far = [32.0, 16.0, 128.0, 96.0]
    near = [64.0, 32.0, 160.0, 112.0]
    for order in ([far, near], [near, far]):
        t = Rasterizer(settings())(torch.tensor([order]), torch.tensor([[0, 0]]))
        gy, gx = 4, 6  # inside both boxes
        cx, cy = gx * 16 + 0.5, gy * 16 + 0.5
        assert t.bbox[0, 0, gy, gx].item() == pytest.approx((cx - near[0]) / 35)
        assert t.bbox[0, 1, gy, gx].item() == pytest.approx((cy - near[1]) / 35)


def test_deadzone_ring_is_masked_out_of_the_loss() -> None:
    s = settings(cov_radius_x=0.3, cov_radius_y=0.3, bbox_min_radius=0.0)
    t = Rasterizer(s)(torch.tensor([[[16.0, 16.0, 240.0, 112.0]]]), torch.tensor([[0]]))
    ring = (t.mask[0, 0] == 0) & (t.cov[0, 0] == 0)
    assert ring.any()  # cells between the coverage and deadzone ellipses
    assert (t.mask[0, 0][t.cov[0, 0] > 0] == 1).all()
    assert (t.mask[0, 1] == 1).all()


def test_no_boxes_gives_empty_targets() -> None:
    t = Rasterizer(settings())(torch.zeros(2, 1, 4), torch.full((2, 1), -1))
    assert t.cov.shape == (2, 2, 8, 16) and t.bbox.shape == (2, 8, 8, 16)
    assert t.cov.sum() == 0 and t.bbox.abs().sum() == 0 and (t.mask == 1).all()


def test_coverage_is_soft_at_the_edges() -> None:
    t = Rasterizer(settings())(torch.tensor([[[40.0, 20.0, 120.0, 100.0]]]), torch.tensor([[1]]))
    values = t.cov[0, 1][t.cov[0, 1] > 0]
    assert values.max() == 1.0 and ((values > 0) & (values < 1)).any()
