"""The values TAO trains with when a DetectNet_v2 spec leaves a field out, in one place.

TAO reads its proto3 messages directly, so an absent scalar means that type's zero value
(clustering_algorithm DBSCAN, dbscan_confidence_threshold 0.0, freeze_bn false, ...); it does not
substitute other numbers. The functions here resolve a class's settings through the spec's maps
and return plain frozen dataclasses, so training, evaluation and inference read the same values
and none invents its own. The loader's checks have already refused specs where a required value
is missing (e.g. a target class without a rasterizer config), so these only raise for a class
the spec does not have.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, TypeVar

from heron.core.config.tao.checks import STRIDE
from heron.v1.tao import experiment_pb2, postprocessing_config_pb2

T = TypeVar("T")
Algorithm = Literal["dbscan", "nms", "hybrid"]
_ALGORITHMS: dict[int, Algorithm] = {
    postprocessing_config_pb2.ClusteringConfig.DBSCAN: "dbscan",
    postprocessing_config_pb2.ClusteringConfig.NMS: "nms",
    postprocessing_config_pb2.ClusteringConfig.HYBRID: "hybrid",
}


@dataclass(frozen=True)
class Clustering:
    """One class's grid-to-boxes settings (postprocessing_config.target_class_config[c])."""

    algorithm: Algorithm
    coverage_threshold: float
    minimum_bounding_box_height: int
    dbscan_eps: float
    dbscan_min_samples: float  # a count, or a total coverage weight when < 1 (TLT 2 specs)
    dbscan_confidence_threshold: float
    neighborhood_size: int
    nms_iou_threshold: float
    nms_confidence_threshold: float
    confidence_threshold: float  # confidence_config.confidence_threshold


@dataclass(frozen=True)
class Rasterizer:
    """One class's ground-truth drawing settings (bbox_rasterizer_config)."""

    cov_center_x: float
    cov_center_y: float
    cov_radius_x: float
    cov_radius_y: float
    bbox_min_radius: float
    deadzone_radius: float  # shared by every class


@dataclass(frozen=True)
class Objective:
    initial_weight: float
    weight_target: float


@dataclass(frozen=True)
class CostWeights:
    """One class's loss weights (cost_function_config.target_classes)."""

    class_weight: float
    coverage_foreground_weight: float
    objectives: dict[str, Objective]  # "cov", "bbox"


@dataclass(frozen=True)
class LearningRate:
    """soft_start_annealing_schedule: ramp up until soft_start, hold, decay from annealing."""

    min_learning_rate: float
    max_learning_rate: float
    soft_start: float
    annealing: float


def output_classes(spec: experiment_pb2.Experiment) -> list[str]:
    """The network's classes in output-channel order: TAO orders the outputs as
    cost_function_config lists target_classes; without one, target_class_mapping's targets
    sorted (a proto map keeps no order)."""
    names = [t.name for t in spec.cost_function_config.target_classes]
    return names or sorted(set(spec.dataset_config.target_class_mapping.values()))


def input_shape(spec: experiment_pb2.Experiment) -> tuple[int, int, int]:
    """(channels, height, width) of the network input."""
    pre = spec.augmentation_config.preprocessing
    return pre.output_image_channel, pre.output_image_height, pre.output_image_width


def output_grid(spec: experiment_pb2.Experiment) -> tuple[int, int]:
    """(rows, columns) of the coverage/bbox output grid."""
    _, height, width = input_shape(spec)
    return height // STRIDE, width // STRIDE


def effective_clustering(spec: experiment_pb2.Experiment, class_name: str) -> Clustering:
    entry = _entry(spec.postprocessing_config.target_class_config, class_name, "postprocessing")
    c = entry.clustering_config
    return Clustering(
        algorithm=_ALGORITHMS[c.clustering_algorithm],
        coverage_threshold=c.coverage_threshold,
        minimum_bounding_box_height=c.minimum_bounding_box_height,
        dbscan_eps=c.dbscan_eps,
        dbscan_min_samples=c.dbscan_min_samples,
        dbscan_confidence_threshold=c.dbscan_confidence_threshold,
        neighborhood_size=c.neighborhood_size,
        nms_iou_threshold=c.nms_iou_threshold,
        nms_confidence_threshold=c.nms_confidence_threshold,
        confidence_threshold=entry.confidence_config.confidence_threshold,
    )


def effective_rasterizer(spec: experiment_pb2.Experiment, class_name: str) -> Rasterizer:
    ras = spec.bbox_rasterizer_config
    r = _entry(ras.target_class_config, class_name, "bbox_rasterizer")
    return Rasterizer(
        r.cov_center_x,
        r.cov_center_y,
        r.cov_radius_x,
        r.cov_radius_y,
        r.bbox_min_radius,
        ras.deadzone_radius,
    )


def effective_cost(spec: experiment_pb2.Experiment, class_name: str) -> CostWeights:
    for target in spec.cost_function_config.target_classes:
        if target.name == class_name:
            objectives = {
                o.name: Objective(o.initial_weight, o.weight_target) for o in target.objectives
            }
            return CostWeights(target.class_weight, target.coverage_foreground_weight, objectives)
    raise KeyError(f"class {class_name!r} has no cost_function_config target_classes entry")


def effective_learning_rate(spec: experiment_pb2.Experiment) -> LearningRate:
    lr = spec.training_config.learning_rate
    if lr.HasField("soft_start_annealing_schedule"):
        s = lr.soft_start_annealing_schedule
        return LearningRate(s.min_learning_rate, s.max_learning_rate, s.soft_start, s.annealing)
    raise KeyError("training_config.learning_rate has no soft_start_annealing_schedule")


def _entry(entries: Mapping[str, T], class_name: str, section: str) -> T:
    if class_name not in entries:
        known = ", ".join(sorted(entries)) or "none"
        raise KeyError(f"class {class_name!r} has no {section} config (classes: {known})")
    return entries[class_name]
