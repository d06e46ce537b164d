"""What scoring a detector needs from the training settings its exported ONNX file carries.

`heron export` writes `TrainingSettings.to_dict()` as JSON into the model's metadata under
`heron.settings`. Training reads all of it back (`TrainingSettings.from_dict`); the engine's
accuracy gate needs only the classes, input size, bbox coding, clustering and evaluation
config, and reads those here (`read_settings`, `settings_from_metadata`) without training's code.

The conversions both sides score with live here once: a class's `clustering_config` to
`ClusterParams` (`cluster_params`) and `evaluation_config` to `EvaluationConfig`
(`evaluation_config`). tests/evaluation/test_model_settings.py round-trips
`TrainingSettings.to_dict()` through the reader, so the writer and the reader cannot drift.

Only the standard library at import: heron.training.settings takes `ClusterSettings` from here
and must import where only torch and numpy are installed; pydantic types load where used.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, Literal

from heron.core.model_metadata import SETTINGS_METADATA_KEY

if TYPE_CHECKING:
    from heron.evaluation.ap.config import EvaluationConfig
    from heron.postprocess.grid import BBoxCoding
    from heron.postprocess.params import ClusterParams

INPUT_NAME = "input_1"
COV_NAME = "output_cov/Sigmoid"
BBOX_NAME = "output_bbox/BiasAdd"
"""DetectNet_v2's tensor names (TAO's, which DeepStream's configs expect)."""

MAX_CANDIDATES = 2000
"""Candidates clustered per class and image when a model is scored (validation, evaluate, infer,
the INT8 gate). A trained detector has far fewer over TAO's 0.005 threshold; a half-trained
stride-8 one has ~8,000 of 8,160 cells, and clustering all of them made a validation take
minutes."""
TAO_STRIDE = 16
"""The output stride of exports made before `model_config.output_stride` existed."""
DEFAULT_MIN_OVERLAP = 0.5
"""IoU for a true positive of a class without `minimum_detection_ground_truth_overlap`."""


class ModelSettingsError(ValueError):
    """Settings metadata that is missing, not JSON, or lacks a field; the message names it."""


@dataclass(frozen=True)
class ClusterSettings:
    """`postprocessing_config.target_class_config[<class>].clustering_config`."""

    coverage_threshold: float = 0.005
    dbscan_eps: float = 0.15
    dbscan_min_samples: float = 1.0
    minimum_bounding_box_height: int = 4
    clustering_algorithm: Literal["DBSCAN", "NMS", "HYBRID"] = "DBSCAN"
    dbscan_confidence_threshold: float = 0.1
    nms_iou_threshold: float = 0.2
    nms_confidence_threshold: float = 0.1


def cluster_params(clustering: ClusterSettings) -> ClusterParams:
    """How a model is clustered when it is scored: TAO's semantics, capped at MAX_CANDIDATES."""
    from heron.postprocess.params import ClusterParams

    params = ClusterParams.from_tao_clustering(**asdict(clustering))
    return params.model_copy(update={"max_candidates": MAX_CANDIDATES})


def evaluation_config(
    classes: Sequence[str],
    minimum_overlap: Mapping[str, float],
    box_limits: Mapping[str, Sequence[int]],
    average_precision_mode: str,
) -> EvaluationConfig:
    """`EvaluationConfig` from TAO's `evaluation_config` as training keeps it.

    A class without a minimum overlap gets DEFAULT_MIN_OVERLAP (specs loaded from files always
    have one: the spec checker requires it); box limits are (minimum_height, maximum_height,
    minimum_width, maximum_width) in network-input pixels, a maximum of 0 meaning no limit.
    """
    from heron.evaluation.ap.config import EvaluationBoxConfig, EvaluationConfig

    boxes = {
        name: EvaluationBoxConfig(
            minimum_height=max(lo_h, 0),
            maximum_height=hi_h or None,
            minimum_width=max(lo_w, 0),
            maximum_width=hi_w or None,
        )
        for name, (lo_h, hi_h, lo_w, hi_w) in box_limits.items()
    }
    return EvaluationConfig(
        minimum_detection_ground_truth_overlap={
            name: minimum_overlap.get(name, DEFAULT_MIN_OVERLAP) for name in classes
        },
        evaluation_box_config=boxes,
        average_precision_mode=average_precision_mode,
    )


@dataclass(frozen=True)
class DetectorSettings:
    """A detector's scoring settings; `classes` is the order of its output channels."""

    classes: tuple[str, ...]
    input_width: int
    input_height: int
    coding: BBoxCoding
    clustering: tuple[ClusterParams, ...]  # one per class, in class order
    evaluation: EvaluationConfig
    class_mapping: Mapping[str, str]
    """dataset class -> target class; empty maps every class in `classes` to itself."""

    def target_of(self, dataset_class: str) -> str | None:
        """The target class a dataset class is scored as; None when it is not."""
        return target_class(dataset_class, self.class_mapping, self.classes)


def target_class(
    dataset_class: str, class_mapping: Mapping[str, str], classes: Sequence[str]
) -> str | None:
    """The target class a KITTI label trains or is scored as; None when it is neither.

    An empty mapping maps each of `classes` to itself. Case does not matter, as under TAO,
    whose dataset_convert lower-cases the labels a spec's lower-case keys then read: a spec
    with `mask` reads `Mask` labels, and a model trained on `Mask` labels scores `mask` ones.
    A spelling that matches exactly wins over one that differs only in case.
    """
    names = class_mapping or {name: name for name in classes}
    if dataset_class in names:
        return names[dataset_class]
    folded = dataset_class.casefold()
    return next((v for k, v in names.items() if k.casefold() == folded), None)


def settings_from_metadata(metadata: Mapping[str, str], where: str) -> DetectorSettings:
    """The settings in an ONNX model's metadata (`where` names the file in errors)."""
    if SETTINGS_METADATA_KEY not in metadata:
        raise ModelSettingsError(
            f"{where}: no {SETTINGS_METADATA_KEY!r} metadata; export it with `heron export`"
        )
    try:
        data = json.loads(metadata[SETTINGS_METADATA_KEY])
    except json.JSONDecodeError as e:
        raise ModelSettingsError(
            f"{where}: metadata {SETTINGS_METADATA_KEY!r} is not JSON ({e})"
        ) from None
    return read_settings(data, f"{where}: {SETTINGS_METADATA_KEY}")


def read_settings(data: Any, where: str = "settings") -> DetectorSettings:
    """Scoring settings from `TrainingSettings.to_dict()` output; the rest of it is ignored."""
    from heron.postprocess.grid import BBoxCoding

    classes = tuple(_field(data, "classes", (list, tuple), where))
    if not classes or not all(isinstance(c, str) for c in classes):
        raise ModelSettingsError(f"{where}: [classes] expected class names, got {list(classes)}")
    model = _field(data, "model", dict, where)
    evaluation = _field(data, "evaluation", dict, where)
    clustering = _field(data, "clustering", dict, where)
    try:
        coding = BBoxCoding(
            stride=model.get("output_stride", TAO_STRIDE),
            scale=_field(model, "bbox_scale", (int, float), f"{where} model"),
            offset=_field(model, "bbox_offset", (int, float), f"{where} model"),
        )
        clusters = tuple(
            cluster_params(_cluster_settings(clustering.get(name), f"{where} clustering.{name}"))
            for name in classes
        )
        return DetectorSettings(
            classes=classes,
            input_width=_field(model, "input_width", int, f"{where} model"),
            input_height=_field(model, "input_height", int, f"{where} model"),
            coding=coding,
            clustering=clusters,
            evaluation=evaluation_config(
                classes,
                _field(evaluation, "minimum_overlap", dict, f"{where} evaluation"),
                _field(evaluation, "box_limits", dict, f"{where} evaluation"),
                _field(evaluation, "average_precision_mode", str, f"{where} evaluation"),
            ),
            class_mapping=dict(_field(data, "class_mapping", dict, where)),
        )
    except (TypeError, ValueError) as e:  # pydantic's ValidationError and ClusterParamsError
        if isinstance(e, ModelSettingsError):
            raise
        raise ModelSettingsError(f"{where}: {e}") from None


def _field(data: Any, name: str, kind: type | tuple[type, ...], where: str) -> Any:
    """data[name], checked to be of `kind` (JSON types: bool is not a number here)."""
    if not isinstance(data, dict):
        raise ModelSettingsError(f"{where}: expected a mapping, got {type(data).__name__}")
    if name not in data:
        raise ModelSettingsError(f"{where}: [{name}] is missing")
    value = data[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or isinstance(value, bool):
        expected = " or ".join(k.__name__ for k in kinds)
        raise ModelSettingsError(
            f"{where}: [{name}] expected {expected}, got {type(value).__name__} {value!r}"
        )
    return value


def _cluster_settings(entry: Any, where: str) -> ClusterSettings:
    """A class's entry, or the defaults for a class the settings have none for."""
    if entry is None:
        return ClusterSettings()
    if not isinstance(entry, dict):
        raise ModelSettingsError(f"{where}: expected a mapping, got {type(entry).__name__}")
    unknown = sorted(set(entry) - {f.name for f in fields(ClusterSettings)})
    if unknown:
        raise ModelSettingsError(f"{where}: unknown fields {unknown}")
    return ClusterSettings(**entry)
