"""postprocess(): hand-built DetectNet_v2 outputs become the boxes that were placed in them."""

from __future__ import annotations

import numpy as np
import pytest
from heron.postprocess import (
    BBoxCoding,
    ClusterMode,
    ClusterParams,
    FrameGeometry,
    GridShapeError,
    encode_bbox,
    postprocess,
)

GW, GH = 60, 34  # 960x544 at stride 16
NMS = ClusterParams(cluster_mode=ClusterMode.NMS, pre_cluster_threshold=0.5)


def _outputs(
    objects: list[tuple[int, list[float], float]], classes: int = 2, cells: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """cov/bbox where a `cells`×`cells` patch at each box centre predicts that box exactly."""
    cov = np.zeros((classes, GH, GW), np.float32)
    bbox = np.zeros((4 * classes, GH, GW), np.float32)
    for class_id, box, score in objects:
        offsets = encode_bbox(np.array([box], np.float32), GW, GH)[0]
        gx = int((box[0] + box[2]) / 2 // 16)
        gy = int((box[1] + box[3]) / 2 // 16)
        patch = (slice(gy, gy + cells), slice(gx, gx + cells))
        cov[(class_id, *patch)] = score
        bbox[(slice(4 * class_id, 4 * class_id + 4), *patch)] = offsets[(slice(None), *patch)]
    return cov, bbox


def test_decode_recovers_placed_boxes_in_exact_pixels() -> None:
    objects = [(0, [100.0, 120.0, 220.0, 260.0], 0.9), (1, [500.0, 40.0, 580.0, 150.0], 0.8)]
    cov, bbox = _outputs(objects)
    (det,) = postprocess(cov, bbox, NMS)
    np.testing.assert_allclose(det.xyxy, [o[1] for o in objects], atol=1e-3)
    assert det.class_ids.tolist() == [0, 1]
    assert det.scores.tolist() == pytest.approx([0.9, 0.8])


@pytest.mark.parametrize("mode", [ClusterMode.DBSCAN, ClusterMode.HYBRID, ClusterMode.NMS])
def test_each_object_gives_one_box_in_clustering_modes(mode: ClusterMode) -> None:
    objects = [(0, [100.0, 120.0, 220.0, 260.0], 0.9), (0, [600.0, 300.0, 700.0, 420.0], 0.7)]
    cov, bbox = _outputs(objects, cells=3)
    params = ClusterParams(
        cluster_mode=mode, pre_cluster_threshold=0.5, eps=0.2, min_boxes=2, nms_iou_threshold=0.5
    )
    (det,) = postprocess(cov, bbox, params)
    np.testing.assert_allclose(det.xyxy, [o[1] for o in objects], atol=1e-3)


def test_group_rectangles_mode_through_postprocess() -> None:
    cov, bbox = _outputs([(1, [100.0, 120.0, 220.0, 260.0], 0.9)], cells=3)
    params = ClusterParams(
        cluster_mode=ClusterMode.GROUP_RECTANGLES,
        pre_cluster_threshold=0.5,
        group_threshold=3,
        eps=0.2,
    )
    (det,) = postprocess(cov, bbox, params)
    np.testing.assert_allclose(det.xyxy, [[100, 120, 220, 260]])
    assert det.class_ids.tolist() == [1] and det.scores.tolist() == pytest.approx([0.9])


def test_pre_cluster_threshold_keeps_equal_coverage_per_class() -> None:
    cov, bbox = _outputs(
        [(0, [100.0, 100.0, 200.0, 200.0], 0.5), (1, [400.0, 100.0, 480.0, 200.0], 0.5)]
    )
    strict = ClusterParams(cluster_mode=ClusterMode.NMS, pre_cluster_threshold=0.51)
    (det,) = postprocess(cov, bbox, [NMS, strict])
    assert det.class_ids.tolist() == [0]


def test_boxes_are_clipped_to_the_network_input_like_nvinfer() -> None:
    cov, bbox = _outputs([(0, [900.0, 480.0, 1000.0, 560.0], 0.9)])
    (det,) = postprocess(cov, bbox, NMS)
    np.testing.assert_allclose(det.xyxy, [[900, 480, 959, 543]])


def test_batch_gives_one_result_per_image() -> None:
    a = _outputs([(0, [100.0, 120.0, 220.0, 260.0], 0.9)])
    b = _outputs([(1, [300.0, 100.0, 340.0, 150.0], 0.7), (1, [600.0, 100.0, 700.0, 200.0], 0.6)])
    cov, bbox = np.stack([a[0], b[0], np.zeros_like(a[0])]), np.stack([a[1], b[1], a[1]])
    results = postprocess(cov, bbox, NMS)
    assert [len(r) for r in results] == [1, 2, 0]
    assert results[1].class_ids.tolist() == [1, 1]


def test_frame_geometry_maps_boxes_and_size_filters_use_frame_pixels() -> None:
    objects = [(0, [100.0, 120.0, 220.0, 260.0], 0.9), (0, [600.0, 300.0, 640.0, 340.0], 0.8)]
    cov, bbox = _outputs(objects)
    frame = FrameGeometry.stretch((960, 544), (1920, 1088))
    (det,) = postprocess(cov, bbox, NMS, frames=frame)
    np.testing.assert_allclose(det.xyxy, [[200, 240, 440, 520], [1200, 600, 1280, 680]], atol=1e-2)
    # 80 frame pixels wide: kept by detected-min-w 80, dropped by 81 (40 at the network input).
    for min_w, count in ((80, 2), (81, 1)):
        params = NMS.model_copy(update={"detected_min_w": min_w})
        assert len(postprocess(cov, bbox, params, frames=frame)[0]) == count
    params = NMS.model_copy(update={"detected_max_h": 200})
    np.testing.assert_allclose(postprocess(cov, bbox, params, frames=frame)[0].xyxy[:, 0], [1200])


def test_roi_offsets_drop_boxes_near_the_frame_edges() -> None:
    cov, bbox = _outputs(
        [(0, [100.0, 10.0, 200.0, 100.0], 0.9), (0, [400.0, 400.0, 500.0, 530.0], 0.8)]
    )
    top = NMS.model_copy(update={"roi_top_offset": 20})
    assert postprocess(cov, bbox, top)[0].xyxy[:, 1].tolist() == [400]
    bottom = NMS.model_copy(update={"roi_bottom_offset": 20})  # 530 > 544 - 20
    assert postprocess(cov, bbox, bottom)[0].xyxy[:, 1].tolist() == [10]


def test_letterbox_geometry() -> None:
    g = FrameGeometry.letterbox((960, 544), (1280, 1280), symmetric=True)
    assert g.scale_x == g.scale_y == pytest.approx(544 / 1280)
    assert g.offset_x == pytest.approx((960 - 544) / 2) and g.offset_y == 0
    box = g.to_frame(np.array([[g.offset_x, 0, g.offset_x + 544, 544]], np.float32))
    np.testing.assert_allclose(box, [[0, 0, 1280, 1280]], atol=1e-3)
    with pytest.raises(ValueError, match="frame_width must be > 0"):
        FrameGeometry(0, 10)


def test_coding_stride_sets_the_default_input_size() -> None:
    coding = BBoxCoding(stride=8)
    cov = np.zeros((1, 4, 4), np.float32)
    bbox = np.zeros((4, 4, 4), np.float32)
    cov[0, 3, 3] = 1.0
    bbox[2:, 3, 3] = 100.0  # far outside: clipped to the 32x32 input
    (det,) = postprocess(cov, bbox, NMS, coding=coding)
    np.testing.assert_allclose(det.xyxy, [[24.5, 24.5, 31, 31]])  # centre 3 * 8 + 0.5


@pytest.mark.parametrize(
    ("cov_shape", "bbox_shape", "message"),
    [
        ((2, 34, 60), (6, 34, 60), r"output_bbox must have shape \(1, 8, 34, 60\)"),
        ((2, 34, 60), (8, 34, 61), r"output_bbox must have shape \(1, 8, 34, 60\)"),
        ((2, 2, 34, 60), (3, 8, 34, 60), r"output_bbox must have shape \(2, 8, 34, 60\)"),
        ((34, 60), (4, 34, 60), r"output_cov must have shape \(C, gh, gw\) or \(B, C, gh, gw\)"),
        ((0, 34, 60), (0, 34, 60), "empty class or grid axis"),
    ],
)
def test_malformed_shapes_give_clear_errors(
    cov_shape: tuple[int, ...], bbox_shape: tuple[int, ...], message: str
) -> None:
    with pytest.raises(GridShapeError, match=message):
        postprocess(np.zeros(cov_shape, np.float32), np.zeros(bbox_shape, np.float32), NMS)


def test_params_per_class_must_match_the_classes() -> None:
    cov, bbox = _outputs([])
    with pytest.raises(
        ValueError, match=r"one ClusterParams per output_cov class \(2\), but got 3"
    ):
        postprocess(cov, bbox, [NMS, NMS, NMS])


def test_frames_must_match_the_batch() -> None:
    cov, bbox = _outputs([])
    frame = FrameGeometry(960, 544)
    with pytest.raises(ValueError, match=r"one FrameGeometry per image \(1\), but got 2"):
        postprocess(cov, bbox, NMS, frames=[frame, frame])
