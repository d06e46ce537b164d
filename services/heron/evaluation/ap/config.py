"""Evaluation settings with TAO `evaluation_config`'s field names and meanings.

`minimum_detection_ground_truth_overlap` and `evaluation_box_config` are maps from class name, as
in a TAO spec; a class without an overlap entry is an error (TAO raises too), a class without a
box entry has no size limits.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator


class APMode(StrEnum):
    """`average_precision_mode`: VOC2007 11-point sampling or VOC2010+ integration."""

    SAMPLE = "SAMPLE"
    INTEGRATE = "INTEGRATE"


class EvaluationBoxConfig(BaseModel):
    """Sizes (pixels) inside which boxes count; outside, ground truth is "don't care"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    minimum_height: float = Field(0, ge=0)
    maximum_height: float | None = Field(None, gt=0, description="None: no limit.")
    minimum_width: float = Field(0, ge=0)
    maximum_width: float | None = Field(None, gt=0, description="None: no limit.")

    @model_validator(mode="after")
    def _ordered(self) -> EvaluationBoxConfig:
        for axis in ("height", "width"):
            low, high = getattr(self, f"minimum_{axis}"), getattr(self, f"maximum_{axis}")
            if high is not None and low > high:
                raise ValueError(f"minimum_{axis} ({low}) must be <= maximum_{axis} ({high})")
        return self


class EvaluationConfig(BaseModel):
    """What `evaluate` needs from TAO's `evaluation_config`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    minimum_detection_ground_truth_overlap: dict[str, float] = Field(
        default_factory=dict, description="Class → minimum IoU for a true positive."
    )
    evaluation_box_config: dict[str, EvaluationBoxConfig] = Field(default_factory=dict)
    average_precision_mode: APMode = Field(APMode.SAMPLE, description="TAO's default: SAMPLE.")
    num_recall_points: int = Field(11, ge=2, description="Recall samples in SAMPLE mode.")

    @model_validator(mode="after")
    def _overlaps_in_range(self) -> EvaluationConfig:
        for name, value in self.minimum_detection_ground_truth_overlap.items():
            if not 0.0 < value <= 1.0:
                raise ValueError(
                    f"minimum_detection_ground_truth_overlap[{name!r}] must be in (0, 1], "
                    f"but got {value}"
                )
        return self

    @classmethod
    def uniform(
        cls,
        class_names: Iterable[str],
        overlap: float = 0.5,
        mode: APMode | str = APMode.SAMPLE,
    ) -> EvaluationConfig:
        """The same minimum overlap for every class and no size limits."""
        return cls(
            minimum_detection_ground_truth_overlap=dict.fromkeys(class_names, overlap),
            average_precision_mode=APMode(mode),
        )

    def overlap_for(self, class_name: str) -> float:
        try:
            return self.minimum_detection_ground_truth_overlap[class_name]
        except KeyError:
            known = sorted(self.minimum_detection_ground_truth_overlap)
            raise ValueError(
                f"evaluation_config.minimum_detection_ground_truth_overlap has no entry for "
                f"class {class_name!r} (it has {known})"
            ) from None

    def box_config_for(self, class_name: str) -> EvaluationBoxConfig:
        return self.evaluation_box_config.get(class_name, EvaluationBoxConfig())
