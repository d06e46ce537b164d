"""Per-class clustering parameters: nvinfer `[class-attrs-*]` keys and TAO `clustering_config`.

Field names are nvinfer's keys with `-` as `_` (`pre-cluster-threshold` → `pre_cluster_threshold`,
`minBoxes` → `min_boxes`), so an nvinfer loader's values pass straight in; defaults are nvinfer's.
TAO's `clustering_config` maps onto the same fields in `from_tao_clustering` (see its docstring
and docs/postprocess.md for what each TAO field becomes).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from heron.core.config.diagnostics import closest


class ClusterMode(IntEnum):
    """nvinfer's `cluster-mode` numbers."""

    GROUP_RECTANGLES = 0
    DBSCAN = 1
    NMS = 2
    HYBRID = 3  # DBSCAN, then NMS over the boxes DBSCAN kept
    NONE = 4


ConfidenceModel = Literal["max_cov", "aggregate_cov", "mean_cov"]

# TAO's ClusteringConfig.ClusteringAlgorithm enum (names and numbers).
_TAO_ALGORITHMS = {
    "DBSCAN": ClusterMode.DBSCAN,
    "NMS": ClusterMode.NMS,
    "HYBRID": ClusterMode.HYBRID,
}
_TAO_ALGORITHM_NUMBERS = {0: "DBSCAN", 1: "NMS", 2: "HYBRID"}

# nvinfer keys whose spelling is not the field name with '-' → '_'.
_NVINFER_ALIASES = {"minBoxes": "min_boxes", "threshold": "pre_cluster_threshold"}
# Display-only class-attrs keys: accepted, not used by clustering.
_NVINFER_DISPLAY_KEYS = {"border_color", "bg_color"}


class ClusterParamsError(ValueError):
    """Clustering parameters that cannot be used; the message names the key."""


class ClusterParams(BaseModel):
    """How one class's grid candidates become boxes (nvinfer semantics unless a field says)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cluster_mode: ClusterMode = Field(
        ClusterMode.GROUP_RECTANGLES, description="nvinfer cluster-mode (0..4); TAO algorithm."
    )
    pre_cluster_threshold: float = Field(
        0.2, ge=0, le=1, description="Cells with coverage >= this are candidates."
    )
    post_cluster_threshold: float = Field(
        0.0, ge=0, description="DBSCAN keeps >=, NMS/hybrid keep > this confidence."
    )
    eps: float = Field(
        0.0, ge=0, description="groupRectangles eps; DBSCAN radius in 1 - IoU (neighbour if <)."
    )
    group_threshold: int = Field(0, ge=0, description="groupRectangles: keep groups > this.")
    min_boxes: int = Field(0, ge=0, description="DBSCAN min samples (itself included); 0 = off.")
    dbscan_min_score: float = Field(
        0.0, ge=0, description="DBSCAN: drop clusters whose summed coverage is below this."
    )
    nms_iou_threshold: float = Field(
        0.3, ge=0, le=1, description="NMS: suppress boxes overlapping a kept one by more."
    )
    topk: int = Field(-1, ge=-1, description="Keep the k best boxes per class; -1 keeps all.")
    max_candidates: int = Field(
        -1,
        ge=-1,
        description="Heron, not nvinfer: cluster only the N best candidates of a class and image "
        "(YOLO's max_nms); -1 keeps all. Training validation caps an untrained model's "
        "thousands of low-coverage cells with it.",
    )
    detected_min_w: float = Field(0, ge=0, description="Drop boxes narrower (frame pixels).")
    detected_min_h: float = Field(0, ge=0, description="Drop boxes lower (frame pixels).")
    detected_max_w: float = Field(0, ge=0, description="Drop boxes wider; 0 = no limit.")
    detected_max_h: float = Field(0, ge=0, description="Drop boxes taller; 0 = no limit.")
    roi_top_offset: float = Field(0, ge=0, description="Drop boxes whose top is above this.")
    roi_bottom_offset: float = Field(
        0, ge=0, description="Drop boxes reaching lower than frame height minus this."
    )
    minimum_bounding_box_height: float | None = Field(
        None, ge=0, description="TAO: drop clustered boxes this tall or less (input pixels)."
    )
    confidence_model: ConfidenceModel = Field(
        "max_cov",
        description="DBSCAN cluster confidence: max (nvinfer), sum (TAO aggregate_cov) or mean.",
    )
    dbscan_weighted: bool = Field(
        False, description="TAO: min_boxes counts summed coverage, not boxes (sample_weight)."
    )
    dbscan_athr_threshold: float | None = Field(
        60.0,
        gt=0,
        description="nvinfer's fixed area-to-hit-ratio filter for DBSCAN; None turns it off.",
    )

    @model_validator(mode="after")
    def _min_below_max(self) -> ClusterParams:
        for axis in ("w", "h"):
            low = getattr(self, f"detected_min_{axis}")
            high = getattr(self, f"detected_max_{axis}")
            if high and low > high:
                raise ValueError(
                    f"detected_min_{axis} ({low}) must be <= detected_max_{axis} ({high})"
                )
        return self

    @classmethod
    def from_nvinfer_keys(
        cls, keys: Mapping[str, Any], cluster_mode: int | ClusterMode | None = None
    ) -> ClusterParams:
        """From nvinfer class-attrs keys (`pre-cluster-threshold`, `minBoxes`, or snake_case).

        `cluster-mode` lives in nvinfer's `[property]` group: pass it as `cluster_mode` (or as a
        key). Unknown keys are an error that names the key and the closest known one.
        """
        fields = {}
        known = set(cls.model_fields) | set(_NVINFER_ALIASES) | _NVINFER_DISPLAY_KEYS
        for key, value in keys.items():
            name = _NVINFER_ALIASES.get(key, key.replace("-", "_"))
            if name in _NVINFER_DISPLAY_KEYS:
                continue
            if name not in cls.model_fields:
                guess = closest(name, known)
                hint = f" (did you mean {guess!r}?)" if guess else ""
                raise ClusterParamsError(f"unknown nvinfer class-attrs key {key!r}{hint}")
            fields[name] = value
        if cluster_mode is not None:
            fields["cluster_mode"] = cluster_mode
        return _build(cls, fields, "nvinfer class-attrs")

    @classmethod
    def from_tao_clustering(
        cls,
        *,
        coverage_threshold: float = 0.0,
        dbscan_eps: float = 0.0,
        dbscan_min_samples: float = 0.0,
        minimum_bounding_box_height: float = 0.0,
        clustering_algorithm: str | int = "DBSCAN",
        dbscan_confidence_threshold: float = 0.0,
        nms_iou_threshold: float = 0.0,
        nms_confidence_threshold: float = 0.0,
        neighborhood_size: int | None = None,
        confidence_model: ConfidenceModel = "aggregate_cov",
    ) -> ClusterParams:
        """From TAO `clustering_config` fields (proto3 defaults where absent) as TAO runs them.

        `dbscan_min_samples` counts summed coverage (TAO passes coverage as DBSCAN sample
        weights) and is truncated to an int >= 1 as TAO does; `dbscan_confidence_threshold`
        filters a cluster's summed coverage (nvinfer's `dbscan-min-score`);
        `nms_confidence_threshold` is NMS's post-cluster threshold. `neighborhood_size` is unused
        by TAO's clustering and accepted for completeness.
        """
        del neighborhood_size
        if isinstance(clustering_algorithm, int):
            name = _TAO_ALGORITHM_NUMBERS.get(clustering_algorithm, "")
        else:
            name = clustering_algorithm.upper()
        mode = _TAO_ALGORITHMS.get(name)
        if mode is None:
            raise ClusterParamsError(
                f"clustering_algorithm must be one of DBSCAN, NMS, HYBRID (or 0, 1, 2), "
                f"but got {clustering_algorithm!r}"
            )
        fields: dict[str, Any] = {
            "cluster_mode": mode,
            "pre_cluster_threshold": coverage_threshold,
            "eps": dbscan_eps,
            "min_boxes": max(int(dbscan_min_samples), 1),
            "dbscan_weighted": True,
            "dbscan_min_score": dbscan_confidence_threshold,
            "dbscan_athr_threshold": None,
            "nms_iou_threshold": nms_iou_threshold,
            "post_cluster_threshold": 0.0
            if mode is ClusterMode.DBSCAN
            else nms_confidence_threshold,
            "minimum_bounding_box_height": minimum_bounding_box_height,
            "confidence_model": confidence_model,
        }
        return _build(cls, fields, "TAO clustering_config")


def _build(cls: type[ClusterParams], fields: dict[str, Any], source: str) -> ClusterParams:
    try:
        return cls(**fields)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']} (got {err.get('input')!r})"
            for err in e.errors()
        )
        raise ClusterParamsError(f"invalid {source}: {problems}") from e
