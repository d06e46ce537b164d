"""ClusterParams from nvinfer class-attrs keys and from TAO clustering_config."""

from __future__ import annotations

import pytest
from heron.postprocess import ClusterMode, ClusterParams, ClusterParamsError


def test_defaults_are_nvinfers() -> None:
    p = ClusterParams()
    assert p.cluster_mode is ClusterMode.GROUP_RECTANGLES
    assert (p.pre_cluster_threshold, p.post_cluster_threshold) == (0.2, 0.0)
    assert (p.eps, p.group_threshold, p.min_boxes, p.dbscan_min_score) == (0.0, 0, 0, 0.0)
    assert (p.nms_iou_threshold, p.topk) == (0.3, -1)
    assert p.confidence_model == "max_cov" and p.dbscan_athr_threshold == 60.0


def test_from_nvinfer_keys_accepts_raw_and_snake_case_spellings() -> None:
    p = ClusterParams.from_nvinfer_keys(
        {
            "pre-cluster-threshold": 0.4,
            "minBoxes": 3,
            "eps": 0.7,
            "dbscan-min-score": 0.9,
            "nms_iou_threshold": 0.5,
            "topk": 20,
            "detected-min-w": 8,
            "border-color": "1;0;0;1",
        },
        cluster_mode=1,
    )
    assert p.cluster_mode is ClusterMode.DBSCAN
    assert (p.pre_cluster_threshold, p.min_boxes, p.eps) == (0.4, 3, 0.7)
    assert (p.dbscan_min_score, p.nms_iou_threshold, p.topk, p.detected_min_w) == (0.9, 0.5, 20, 8)
    assert ClusterParams.from_nvinfer_keys({"threshold": 0.3}).pre_cluster_threshold == 0.3


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (
            {"pre-cluster-treshold": 0.4},
            "unknown nvinfer class-attrs key 'pre-cluster-treshold'.*"
            "did you mean 'pre_cluster_threshold'",
        ),
        ({"pre-cluster-threshold": -1}, r"pre_cluster_threshold: .*greater than or equal to 0"),
        ({"nms-iou-threshold": 2}, "nms_iou_threshold"),
        ({"topk": -2}, "topk"),
        ({"minBoxes": "many"}, "min_boxes"),
        ({"detected-min-w": 50, "detected-max-w": 10}, "detected_min_w .50.* <= detected_max_w"),
    ],
)
def test_from_nvinfer_keys_rejects_bad_values(keys: dict[str, object], message: str) -> None:
    with pytest.raises(ClusterParamsError, match=message):
        ClusterParams.from_nvinfer_keys(keys)


def test_unknown_cluster_mode_is_rejected() -> None:
    with pytest.raises(ClusterParamsError, match="cluster_mode"):
        ClusterParams.from_nvinfer_keys({}, cluster_mode=7)


@pytest.mark.parametrize(
    ("algorithm", "mode"),
    [("DBSCAN", ClusterMode.DBSCAN), ("nms", ClusterMode.NMS), (2, ClusterMode.HYBRID)],
)
def test_from_tao_clustering_maps_fields(algorithm: str | int, mode: ClusterMode) -> None:
    p = ClusterParams.from_tao_clustering(
        coverage_threshold=0.005,
        dbscan_eps=0.15,
        dbscan_min_samples=2.7,
        minimum_bounding_box_height=4,
        clustering_algorithm=algorithm,
        dbscan_confidence_threshold=0.1,
        nms_iou_threshold=0.2,
        nms_confidence_threshold=0.3,
    )
    assert p.cluster_mode is mode
    assert (p.pre_cluster_threshold, p.eps, p.min_boxes) == (0.005, 0.15, 2)
    assert p.dbscan_weighted and p.dbscan_athr_threshold is None
    assert (p.dbscan_min_score, p.minimum_bounding_box_height) == (0.1, 4)
    assert p.confidence_model == "aggregate_cov"
    assert p.post_cluster_threshold == (0.0 if mode is ClusterMode.DBSCAN else 0.3)


@pytest.mark.parametrize("algorithm", ["KMEANS", 5])
def test_from_tao_clustering_rejects_unknown_algorithms(algorithm: str | int) -> None:
    with pytest.raises(ClusterParamsError, match="clustering_algorithm must be one of"):
        ClusterParams.from_tao_clustering(clustering_algorithm=algorithm)


def test_from_tao_clustering_names_the_bad_field() -> None:
    with pytest.raises(ClusterParamsError, match="TAO clustering_config: pre_cluster_threshold"):
        ClusterParams.from_tao_clustering(coverage_threshold=1.5)
