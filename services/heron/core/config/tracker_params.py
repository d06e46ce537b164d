"""Tracker parameters under DeepStream's NvMOT config names (the ll-config-file YAML).

Sections and keys follow DeepStream's `config_tracker_*.yml`; each field's alias is the key as
DeepStream spells it. `Heron` holds what DeepStream has no key for. Defaults are DeepStream's
where it has one.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TrackerKind(StrEnum):
    IOU = "iou"
    KLT = "klt"
    CORRELATION = "correlation"  # NvDCF's place: an OpenCV correlation-filter tracker
    BYTETRACK = "bytetrack"


class _Section(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class BaseConfig(_Section):
    min_detector_confidence: float = Field(
        0.0,
        ge=0,
        le=1,
        alias="minDetectorConfidence",
        description="Detections below this score are not tracked (ByteTrack: its low threshold).",
    )


class TargetManagement(_Section):
    min_iou_diff_4_new_target: float = Field(
        0.5,
        ge=0,
        le=1,
        alias="minIouDiff4NewTarget",
        description="A new detection overlapping a target by more IoU than this starts no target.",
    )
    probation_age: int = Field(
        3, ge=0, alias="probationAge", description="Matched frames before a target is reported."
    )
    max_shadow_tracking_age: int = Field(
        30,
        ge=0,
        alias="maxShadowTrackingAge",
        description="Frames a confirmed target survives without a matching detection.",
    )
    early_termination_age: int = Field(
        1,
        ge=1,
        alias="earlyTerminationAge",
        description="Misses that end a target still in probation.",
    )
    max_targets_per_stream: int = Field(
        150, ge=1, alias="maxTargetsPerStream", description="Targets kept per stream at most."
    )
    min_tracker_confidence: float = Field(
        0.2,
        ge=0,
        le=1,
        alias="minTrackerConfidence",
        description="Visual trackers: below this the target is not reported on skipped frames.",
    )


class DataAssociator(_Section):
    min_matching_score_4_iou: float = Field(
        0.3,
        ge=0,
        le=1,
        alias="minMatchingScore4Iou",
        description="Least IoU between a target and a detection to match them.",
    )
    check_class_match: bool = Field(
        True, alias="checkClassMatch", description="Match only detections of the target's class."
    )
    tentative_detector_confidence: float = Field(
        0.5,
        ge=0,
        le=1,
        alias="tentativeDetectorConfidence",
        description="ByteTrack: detections at or above this are high-score (first association).",
    )
    min_matching_score_4_tentative_iou: float = Field(
        0.5,
        ge=0,
        le=1,
        alias="minMatchingScore4TentativeIou",
        description="ByteTrack: least IoU to match a low-score detection (second association).",
    )


class StateEstimator(_Section):
    process_noise_var_4_loc: float = Field(
        2.0, gt=0, alias="processNoiseVar4Loc", description="Kalman process noise of position."
    )
    process_noise_var_4_size: float = Field(
        1.0, gt=0, alias="processNoiseVar4Size", description="Kalman process noise of size."
    )
    process_noise_var_4_vel: float = Field(
        0.1, gt=0, alias="processNoiseVar4Vel", description="Kalman process noise of velocity."
    )
    measurement_noise_var_4_detector: float = Field(
        4.0,
        gt=0,
        alias="measurementNoiseVar4Detector",
        description="Kalman measurement noise of a detection.",
    )


class HeronExtras(_Section):
    """Keys DeepStream has no equivalent for; section `Heron` of the ll-config-file."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    tracker: TrackerKind | None = Field(
        None,
        description="Pick the tracker regardless of ll-lib-file (iou, klt, correlation, "
        "bytetrack).",
    )
    correlation_filter: Literal["csrt", "kcf"] = Field(
        "kcf",
        alias="correlationFilter",
        description="OpenCV tracker of the correlation tracker: kcf (fast) or csrt (accurate).",
    )
    klt_max_corners: int = Field(
        24, ge=1, le=500, alias="kltMaxCorners", description="KLT: feature points per target."
    )
    klt_win_size: int = Field(
        15, ge=3, le=101, alias="kltWinSize", description="KLT: Lucas-Kanade window (pixels)."
    )
    klt_pyramid_levels: int = Field(
        3, ge=0, le=8, alias="kltPyramidLevels", description="KLT: pyramid levels above the image."
    )


class TrackerParams(BaseModel):
    """Everything a tracker reads from the ll-config-file, with defaults for what is absent."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    base: BaseConfig = Field(default_factory=BaseConfig, alias="BaseConfig")
    targets: TargetManagement = Field(default_factory=TargetManagement, alias="TargetManagement")
    associator: DataAssociator = Field(default_factory=DataAssociator, alias="DataAssociator")
    estimator: StateEstimator = Field(default_factory=StateEstimator, alias="StateEstimator")
    heron: HeronExtras = Field(default_factory=HeronExtras, alias="Heron")


SECTIONS: dict[str, type[BaseModel]] = {
    "BaseConfig": BaseConfig,
    "TargetManagement": TargetManagement,
    "DataAssociator": DataAssociator,
    "StateEstimator": StateEstimator,
    "Heron": HeronExtras,
}

# DeepStream sections Heron reads no key of (their keys tune NvDCF/ReID internals).
IGNORED_SECTIONS = frozenset(
    {"TrajectoryManagement", "VisualTracker", "ReID", "ObjectModelProjection", "Segmentation"}
)
