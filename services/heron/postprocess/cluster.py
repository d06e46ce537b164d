"""Clustering of one class's candidate boxes, with nvinfer's semantics for every cluster-mode.

Each function takes `boxes` `(n, 4)` xyxy float32 and `scores` `(n,)` and returns the same pair
for the clustered boxes. `cluster` runs a `ClusterParams` through the right mode, then the
post-cluster threshold, TAO's minimum height and top-k, each where nvinfer applies it.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from heron.core.boxes import ltwh_to_xyxy, pairwise_iou, xyxy_to_ltwh
from heron.postprocess.params import ClusterMode, ClusterParams

FloatArray = NDArray[np.float32]
IntArray = NDArray[np.int64]
Boxes = tuple[FloatArray, FloatArray]


def nms(boxes: FloatArray, scores: FloatArray, iou_threshold: float) -> IntArray:
    """Indices kept by greedy NMS, best first: a box survives if IoU <= threshold with all kept.

    nvinfer's rule (stable sort by score, IoU 0 for empty unions). cv2.dnn.NMSBoxes is the same
    greedy loop but drops scores <= its score threshold (which must be >= 0) and treats two
    empty boxes as identical, so it would disagree with nvinfer on degenerate candidates.

    Each kept box is compared with the boxes still standing only, never as an n x n matrix: a
    half-trained stride-8 detector puts ~8,000 cells per class over a low threshold, whose
    matrix (and the loop over it) cost seconds an image.
    """
    order = np.argsort(-scores, kind="stable")
    ranked = boxes[order].astype(np.float32, copy=False)
    x1, y1, x2, y2 = (np.ascontiguousarray(ranked[:, k]) for k in range(4))
    area = (x2 - x1) * (y2 - y1)
    standing = np.arange(len(order))
    keep: list[int] = []
    while standing.size:
        best, rest = standing[0], standing[1:]
        keep.append(int(order[best]))
        # pairwise_iou's arithmetic for one row, in the same float32 steps (same results).
        iw = np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest])
        ih = np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest])
        inter = np.maximum(iw, 0.0, out=iw) * np.maximum(ih, 0.0, out=ih)
        union = area[best] + area[rest] - inter
        iou = np.zeros_like(inter)
        np.divide(inter, union, out=iou, where=union > 0)
        standing = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def _to_cv_rects(boxes: FloatArray) -> NDArray[np.int32]:
    # nvinfer builds cv::Rect(left, top, width, height) from floats: C++ truncates each.
    return np.trunc(xyxy_to_ltwh(boxes)).astype(np.int32)


def _similar_rect_groups(rects: NDArray[np.int32], eps: float) -> IntArray:
    """OpenCV's partition of rects under its SimilarRects predicate (connected components)."""
    from scipy.sparse import csr_matrix  # heavy: loaded on first use
    from scipy.sparse.csgraph import connected_components

    r = rects.astype(np.float64)
    x2, y2 = r[:, 0] + r[:, 2], r[:, 1] + r[:, 3]
    delta = eps * (np.minimum.outer(r[:, 2], r[:, 2]) + np.minimum.outer(r[:, 3], r[:, 3])) * 0.5
    similar = (
        (np.abs(np.subtract.outer(r[:, 0], r[:, 0])) <= delta)
        & (np.abs(np.subtract.outer(r[:, 1], r[:, 1])) <= delta)
        & (np.abs(np.subtract.outer(x2, x2)) <= delta)
        & (np.abs(np.subtract.outer(y2, y2)) <= delta)
    )
    _, labels = connected_components(csr_matrix(similar), directed=False)
    return np.asarray(labels, dtype=np.int64)


def group_rectangles(
    boxes: FloatArray, scores: FloatArray, group_threshold: int, eps: float
) -> Boxes:
    """cluster-mode 0: `cv2.groupRectangles` on nvinfer's integer rects.

    The boxes are OpenCV's. nvinfer reports confidence -0.1 in this mode; we report the highest
    coverage in each group (found through OpenCV's own similarity predicate) so that scores
    stay usable for evaluation and tracking.
    """
    import cv2  # heavy: loaded on first use

    rects = _to_cv_rects(boxes)
    if group_threshold <= 0 or len(rects) == 0:
        return ltwh_to_xyxy(rects.astype(np.float32)), scores.astype(np.float32)
    if not hasattr(cv2, "groupRectangles"):
        raise RuntimeError(
            "cluster-mode 0 needs cv2.groupRectangles, which OpenCV 5 ships only in "
            "opencv-contrib-python-headless (or use opencv-python-headless < 5)"
        )
    cv_rects, cv_counts = cv2.groupRectangles(rects.tolist(), group_threshold, eps)
    if len(cv_rects) == 0:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    grouped = np.asarray(cv_rects, dtype=np.float64).reshape(-1, 4)
    counts = np.asarray(cv_counts, dtype=np.int64).reshape(-1)
    labels = _similar_rect_groups(rects, eps)
    n_groups = int(labels.max()) + 1
    sizes = np.bincount(labels, minlength=n_groups)
    means = np.stack(
        [np.bincount(labels, rects[:, k], minlength=n_groups) / sizes for k in range(4)], axis=1
    )
    best = np.full(n_groups, -np.inf)
    np.maximum.at(best, labels, scores.astype(np.float64))
    out_scores = np.empty(len(grouped), np.float32)
    for i, (rect, count) in enumerate(zip(grouped, counts, strict=True)):
        # OpenCV reports each kept group's rounded mean rect and size: find that group.
        distance = np.abs(means - rect).sum(axis=1) + np.where(sizes == count, 0.0, np.inf)
        out_scores[i] = best[int(np.argmin(distance))]
    return ltwh_to_xyxy(grouped.astype(np.float32)), out_scores


def dbscan_labels(
    boxes: FloatArray, scores: FloatArray, eps: float, min_boxes: int, weighted: bool
) -> IntArray:
    """sklearn DBSCAN on the distance 1 - IoU; -1 marks noise.

    nvinfer calls two boxes neighbours when 1 - IoU < eps (strictly); sklearn uses <=, so it
    gets a 0/1 neighbourhood matrix with radius 0.5 that encodes nvinfer's test exactly (also for
    eps = 0, which sklearn refuses). `weighted` makes `min_boxes` a sum of coverage (TAO).
    """
    from scipy.sparse import csr_matrix  # heavy: loaded on first use
    from sklearn.cluster import DBSCAN

    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    neighbours = (1.0 - pairwise_iou(boxes, boxes)) < eps
    np.fill_diagonal(neighbours, True)
    # A sparse graph holding only neighbour pairs (at distance 0.25 < 0.5) keeps sklearn's
    # radius search linear in the number of pairs rather than quadratic in boxes.
    graph = csr_matrix((neighbours * np.float32(0.25)).astype(np.float32))
    weight = scores.astype(np.float64) if weighted else None
    model = DBSCAN(eps=0.5, min_samples=max(min_boxes, 1), metric="precomputed")
    return np.asarray(model.fit_predict(graph, sample_weight=weight), dtype=np.int64)


def merge_clusters(
    boxes: FloatArray, scores: FloatArray, labels: IntArray, params: ClusterParams
) -> Boxes:
    """One box per DBSCAN cluster: coverage-weighted mean box, confidence per `confidence_model`.

    Clusters whose summed coverage is below `dbscan_min_score` are dropped, and (nvinfer) those
    whose sqrt(area) / (members + 1) exceeds the area-to-hit-ratio threshold — nvinfer counts
    one member more than the cluster has, which is kept here so that results match.
    """
    member = labels >= 0
    if not member.any():
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    lab, w = labels[member], scores[member].astype(np.float64)
    b = boxes[member].astype(np.float64)
    k = int(lab.max()) + 1
    total = np.bincount(lab, w, minlength=k)
    count = np.bincount(lab, minlength=k)
    sums = np.stack([np.bincount(lab, w * b[:, i], minlength=k) for i in range(4)], 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_box = sums / total[:, None]
    highest = np.full(k, -np.inf)
    np.maximum.at(highest, lab, w)
    confidence = {
        "max_cov": highest,
        "aggregate_cov": total,
        "mean_cov": total / np.maximum(count, 1),
    }[params.confidence_model]
    keep = (count > 0) & (total > 0) & (total >= params.dbscan_min_score)
    if params.dbscan_athr_threshold is not None:
        wh = np.clip(mean_box[:, 2:] - mean_box[:, :2], 0.0, None)
        ratio = np.sqrt(wh[:, 0] * wh[:, 1]) / (count + 1)
        keep &= ratio <= params.dbscan_athr_threshold
    return mean_box[keep].astype(np.float32), confidence[keep].astype(np.float32)


def _top_k(boxes: FloatArray, scores: FloatArray, k: int) -> Boxes:
    if k < 0 or len(scores) <= k:
        return boxes, scores
    order = np.argsort(-scores, kind="stable")[:k]
    return boxes[order], scores[order]


def _cluster_mode(boxes: FloatArray, scores: FloatArray, p: ClusterParams) -> Boxes:
    mode = p.cluster_mode
    if mode is ClusterMode.GROUP_RECTANGLES:
        return group_rectangles(boxes, scores, p.group_threshold, p.eps)
    if mode is ClusterMode.NONE:
        return boxes, scores
    if mode is ClusterMode.DBSCAN:
        if p.min_boxes > 0:  # nvinfer skips DBSCAN when minBoxes is 0
            labels = dbscan_labels(boxes, scores, p.eps, p.min_boxes, p.dbscan_weighted)
            boxes, scores = merge_clusters(boxes, scores, labels, p)
        keep = scores >= p.post_cluster_threshold
        return boxes[keep], scores[keep]
    if mode is ClusterMode.HYBRID and p.min_boxes > 0:
        labels = dbscan_labels(boxes, scores, p.eps, p.min_boxes, p.dbscan_weighted)
        boxes, scores = boxes[labels >= 0], scores[labels >= 0]
    kept = nms(boxes, scores, p.nms_iou_threshold)
    boxes, scores = boxes[kept], scores[kept]
    keep = scores > p.post_cluster_threshold
    return boxes[keep], scores[keep]


def cluster(boxes: FloatArray, scores: FloatArray, params: ClusterParams) -> Boxes:
    """Cluster one class's candidates; boxes stay in network-input pixels."""
    if params.max_candidates >= 0:
        boxes, scores = _top_k(boxes, scores, params.max_candidates)
    boxes, scores = _cluster_mode(boxes, scores, params)
    if params.minimum_bounding_box_height is not None:
        tall = (boxes[:, 3] - boxes[:, 1]) > params.minimum_bounding_box_height
        boxes, scores = boxes[tall], scores[tall]
    if params.cluster_mode is ClusterMode.GROUP_RECTANGLES:
        return boxes, scores  # nvinfer applies neither post-cluster threshold nor top-k here
    return _top_k(boxes, scores, params.topk)
