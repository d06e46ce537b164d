"""Each cluster mode against hand-checked fixtures, and against OpenCV where OpenCV has it."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import pytest
from heron.core.boxes import pairwise_iou
from heron.postprocess import ClusterMode, ClusterParams
from heron.postprocess.cluster import _similar_rect_groups, cluster, group_rectangles, nms
from numpy.typing import NDArray

F = np.float32

# A and B overlap (IoU 90/110), C is far away.
A, B, C = [0, 0, 100, 100], [10, 0, 110, 100], [300, 300, 400, 400]


def _boxes(*rows: Sequence[float]) -> NDArray[np.float32]:
    return np.asarray(rows, F).reshape(-1, 4)


def _params(mode: ClusterMode, **kw: object) -> ClusterParams:
    return ClusterParams(cluster_mode=mode, **kw)


# --- cluster-mode 1: DBSCAN --------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "score"), [("max_cov", 0.9), ("aggregate_cov", 1.2), ("mean_cov", 0.6)]
)
def test_dbscan_merges_overlapping_boxes_with_coverage_weights(model: str, score: float) -> None:
    p = _params(ClusterMode.DBSCAN, eps=0.3, min_boxes=2, confidence_model=model)
    boxes, scores = cluster(_boxes(A, B, C), np.array([0.9, 0.3, 0.5], F), p)
    # (0.9*A + 0.3*B) / 1.2; C alone is below min_boxes and is noise.
    np.testing.assert_allclose(boxes, [[2.5, 0, 102.5, 100]], atol=1e-4)
    assert scores.tolist() == pytest.approx([score])


def test_dbscan_keeps_distant_boxes_apart() -> None:
    p = _params(ClusterMode.DBSCAN, eps=0.3, min_boxes=1)
    boxes, scores = cluster(_boxes(A, B, C), np.array([0.9, 0.3, 0.5], F), p)
    assert len(boxes) == 2
    np.testing.assert_allclose(boxes[1], C)
    assert scores.tolist() == pytest.approx([0.9, 0.5])


def test_dbscan_neighbours_need_distance_strictly_below_eps() -> None:
    half = [0, 0, 50, 100]  # IoU with A is exactly 0.5, so 1 - IoU == eps
    p = _params(ClusterMode.DBSCAN, eps=0.5, min_boxes=2)
    boxes, _ = cluster(_boxes(A, half), np.array([0.5, 0.5], F), p)
    assert len(boxes) == 0
    p = _params(ClusterMode.DBSCAN, eps=0.51, min_boxes=2)
    assert len(cluster(_boxes(A, half), np.array([0.5, 0.5], F), p)[0]) == 1


def test_dbscan_min_boxes_zero_skips_clustering_like_nvinfer() -> None:
    p = _params(ClusterMode.DBSCAN, eps=0.3, min_boxes=0)
    boxes, _ = cluster(_boxes(A, B, C), np.array([0.9, 0.3, 0.5], F), p)
    np.testing.assert_allclose(boxes, _boxes(A, B, C))


def test_dbscan_min_score_filters_on_summed_coverage() -> None:
    scores = np.array([0.75, 0.25], F)
    kept = _params(ClusterMode.DBSCAN, eps=0.3, min_boxes=2, dbscan_min_score=1.0)
    dropped = _params(ClusterMode.DBSCAN, eps=0.3, min_boxes=2, dbscan_min_score=1.01)
    assert len(cluster(_boxes(A, B), scores, kept)[0]) == 1
    assert len(cluster(_boxes(A, B), scores, dropped)[0]) == 0


def test_dbscan_area_to_hit_ratio_filter_counts_like_nvinfer() -> None:
    big = [0, 0, 200, 200]  # sqrt(area) 200 / (1 member + 1) = 100 > 60
    p = _params(ClusterMode.DBSCAN, eps=0.3, min_boxes=1)
    assert len(cluster(_boxes(big), np.array([0.9], F), p)[0]) == 0
    p_off = _params(ClusterMode.DBSCAN, eps=0.3, min_boxes=1, dbscan_athr_threshold=None)
    assert len(cluster(_boxes(big), np.array([0.9], F), p_off)[0]) == 1


def test_dbscan_weighted_min_boxes_counts_coverage_like_tao() -> None:
    scores = np.array([0.9, 0.3], F)
    unweighted = _params(ClusterMode.DBSCAN, eps=0.3, min_boxes=2)
    weighted = _params(ClusterMode.DBSCAN, eps=0.3, min_boxes=2, dbscan_weighted=True)
    assert len(cluster(_boxes(A, B), scores, unweighted)[0]) == 1
    assert len(cluster(_boxes(A, B), scores, weighted)[0]) == 0  # 0.9 + 0.3 < 2


def test_dbscan_post_cluster_threshold_keeps_equal_scores() -> None:
    p = _params(ClusterMode.DBSCAN, eps=0.3, min_boxes=1, post_cluster_threshold=0.5)
    _, scores = cluster(_boxes(A, C), np.array([0.4, 0.5], F), p)
    assert scores.tolist() == [0.5]


# --- cluster-mode 2: NMS -------------------------------------------------------------------


def test_nms_keeps_the_top_box_of_an_overlapping_pair() -> None:
    p = _params(ClusterMode.NMS, nms_iou_threshold=0.5)
    boxes, scores = cluster(_boxes(A, B, C), np.array([0.3, 0.9, 0.5], F), p)
    np.testing.assert_allclose(boxes, _boxes(B, C))
    assert scores.tolist() == pytest.approx([0.9, 0.5])


def test_nms_keeps_a_box_whose_overlap_equals_the_threshold() -> None:
    half = [0, 0, 50, 100]
    p = _params(ClusterMode.NMS, nms_iou_threshold=0.5)
    assert len(cluster(_boxes(A, half), np.array([0.9, 0.8], F), p)[0]) == 2


def test_nms_post_cluster_threshold_is_strict_and_topk_keeps_the_best() -> None:
    p = _params(ClusterMode.NMS, nms_iou_threshold=0.5, post_cluster_threshold=0.5)
    _, scores = cluster(_boxes(A, C), np.array([0.5, 0.6], F), p)
    assert scores.tolist() == pytest.approx([0.6])
    p = _params(ClusterMode.NMS, nms_iou_threshold=0.5, topk=1)
    boxes, _ = cluster(_boxes(A, C), np.array([0.5, 0.6], F), p)
    np.testing.assert_allclose(boxes, _boxes(C))


@pytest.mark.parametrize("seed", range(10))
def test_nms_agrees_with_opencv_on_random_boxes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 300, (60, 2))
    wh = rng.uniform(10, 120, (60, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(F)
    scores = rng.uniform(0.01, 1.0, 60).astype(F)
    ours = nms(boxes, scores, 0.4)
    xywh = [(float(x), float(y), float(w), float(h)) for (x, y), (w, h) in zip(xy, wh, strict=True)]
    theirs = cv2.dnn.NMSBoxes(xywh, scores.tolist(), 0.0, 0.4)
    assert ours.tolist() == np.asarray(theirs).reshape(-1).tolist()


# --- cluster-mode 3: hybrid ----------------------------------------------------------------


def test_hybrid_drops_dbscan_noise_then_keeps_the_top_raw_box() -> None:
    p = _params(ClusterMode.HYBRID, eps=0.3, min_boxes=2, nms_iou_threshold=0.5)
    boxes, scores = cluster(_boxes(A, B, C), np.array([0.3, 0.9, 0.5], F), p)
    # C is DBSCAN noise; of A and B NMS keeps B itself (not a mean box).
    np.testing.assert_allclose(boxes, _boxes(B))
    assert scores.tolist() == pytest.approx([0.9])


# --- cluster-mode 4: none ------------------------------------------------------------------


def test_none_passes_candidates_and_applies_topk_only() -> None:
    p = _params(ClusterMode.NONE, post_cluster_threshold=0.95, topk=2)
    boxes, scores = cluster(_boxes(A, B, C), np.array([0.3, 0.9, 0.5], F), p)
    np.testing.assert_allclose(boxes, _boxes(B, C))
    assert scores.tolist() == pytest.approx([0.9, 0.5])


# --- cluster-mode 0: group rectangles ------------------------------------------------------


def test_group_rectangles_merges_similar_boxes_and_reports_the_best_coverage() -> None:
    near = [2, 1, 102, 99]
    far1, far2 = [300, 300, 340, 340], [301, 300, 341, 341]
    lone = [600, 10, 650, 60]
    p = _params(ClusterMode.GROUP_RECTANGLES, group_threshold=1, eps=0.2)
    boxes, scores = cluster(
        _boxes(A, near, far1, far2, lone), np.array([0.4, 0.7, 0.8, 0.2, 0.99], F), p
    )
    np.testing.assert_allclose(boxes, _boxes([1, 0, 101, 99], [300, 300, 340, 340]))
    assert scores.tolist() == pytest.approx([0.7, 0.8])  # the lone box has too few members


def test_group_threshold_zero_only_truncates_like_nvinfer() -> None:
    p = _params(ClusterMode.GROUP_RECTANGLES, group_threshold=0, eps=0.2)
    boxes, scores = cluster(_boxes([1.7, 2.2, 10.9, 20.5]), np.array([0.5], F), p)
    # cv::Rect(int(1.7), int(2.2), int(9.2), int(18.3))
    np.testing.assert_allclose(boxes, [[1, 2, 10, 20]])
    assert scores.tolist() == [0.5]


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize(("threshold", "eps"), [(1, 0.2), (2, 0.3), (3, 0.5)])
def test_group_rectangles_agrees_with_cv2_on_random_boxes(
    seed: int, threshold: int, eps: float
) -> None:
    rng = np.random.default_rng(seed)
    centres = rng.uniform(50, 900, (8, 2))
    sizes = rng.uniform(20, 150, (8, 1))
    member = rng.integers(0, 8, 80)
    jitter = rng.normal(0, 4, (80, 4))
    half = sizes[member] / 2
    raw = np.concatenate([centres[member] - half, centres[member] + half], 1) + jitter
    boxes = np.clip(raw, 0, None).astype(F)
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2])
    scores = rng.uniform(0.2, 1.0, 80).astype(F)
    ours, our_scores = group_rectangles(boxes, scores, threshold, eps)
    rects = np.trunc(
        np.stack(
            [boxes[:, 0], boxes[:, 1], boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], 1
        )
    ).astype(np.int32)
    grouped, _ = cv2.groupRectangles(rects.tolist(), threshold, eps)
    expected = np.asarray(grouped, F).reshape(-1, 4)
    expected[:, 2:] += expected[:, :2]
    np.testing.assert_array_equal(ours, expected)
    # Each OpenCV box is the rounded mean of one same-sized group of our partition (so within
    # 0.5 px a coordinate), and its score is that group's best coverage.
    labels = _similar_rect_groups(rects, eps)
    for rect, score in zip(np.asarray(grouped).reshape(-1, 4), our_scores, strict=True):
        groups = [
            g for g in np.unique(labels) if np.abs(rects[labels == g].mean(0) - rect).sum() <= 2
        ]
        assert any(scores[labels == g].max() == score for g in groups)


def test_tao_minimum_height_drops_boxes_this_tall_or_less() -> None:
    p = _params(ClusterMode.NMS, nms_iou_threshold=0.5, minimum_bounding_box_height=100)
    boxes, _ = cluster(_boxes(A, [300, 300, 400, 401]), np.array([0.9, 0.8], F), p)
    np.testing.assert_allclose(boxes, [[300, 300, 400, 401]])


@pytest.mark.parametrize("mode", list(ClusterMode))
def test_every_mode_handles_no_candidates(mode: ClusterMode) -> None:
    p = _params(mode, group_threshold=1, eps=0.2, min_boxes=1)
    boxes, scores = cluster(np.zeros((0, 4), F), np.zeros(0, F), p)
    assert boxes.shape == (0, 4) and scores.shape == (0,)


def _nms_by_matrix(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[int]:
    """The textbook form: the whole IoU matrix, then the greedy loop in stable score order."""
    overlaps = pairwise_iou(boxes, boxes) > iou_threshold
    suppressed = np.zeros(len(scores), dtype=bool)
    keep = []
    for i in np.argsort(-scores, kind="stable"):
        if not suppressed[i]:
            keep.append(int(i))
            suppressed |= overlaps[i]
    return keep


@pytest.mark.parametrize("seed", range(6))
def test_nms_equals_the_matrix_form_with_ties_and_empty_boxes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 200, (300, 2))
    wh = rng.uniform(0, 60, (300, 2)) * (rng.random((300, 1)) > 0.05)  # some empty boxes
    boxes = np.hstack([xy, xy + wh]).astype(np.float32)
    scores = rng.choice([0.2, 0.5, 0.9], 300).astype(np.float32)  # many ties
    for threshold in (0.0, 0.3, 0.5, 0.9):
        assert nms(boxes, scores, threshold).tolist() == _nms_by_matrix(boxes, scores, threshold)


def test_nms_takes_a_whole_stride_8_grid_of_candidates() -> None:
    """A half-trained detector's grid: 120x68 overlapping candidates, all above threshold."""
    gx, gy = np.meshgrid(np.arange(120) * 8.0, np.arange(68) * 8.0)
    centres = np.stack([gx.ravel(), gy.ravel()], 1)
    boxes = np.hstack([centres - 20, centres + 20]).astype(np.float32)
    scores = np.random.default_rng(0).random(len(boxes)).astype(np.float32)
    kept = nms(boxes, scores, 0.4)
    assert kept.tolist() == _nms_by_matrix(boxes, scores, 0.4)
    assert 0 < len(kept) < len(boxes)


def test_max_candidates_clusters_only_the_best_and_defaults_to_all() -> None:
    boxes = np.array([[0, 0, 10, 10], [100, 0, 110, 10], [200, 0, 210, 10]], F)
    scores = np.array([0.3, 0.9, 0.6], F)
    p = ClusterParams(cluster_mode=ClusterMode.NMS, pre_cluster_threshold=0.0)
    assert len(cluster(boxes, scores, p)[1]) == 3
    _, kept = cluster(boxes, scores, p.model_copy(update={"max_candidates": 2}))
    assert sorted(kept.tolist()) == pytest.approx([0.6, 0.9])
