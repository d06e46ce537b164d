"""The result of an evaluation: per-class AP with its precision/recall curve, and mAP."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from heron.evaluation.ap.config import EvaluationConfig


class ClassReport(BaseModel):
    """One class: AP, counts, and the cumulative precision/recall over detections by score."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    average_precision: float
    min_overlap: float
    num_ground_truth: int = Field(description="Boxes inside the evaluation box sizes.")
    num_dont_care: int = Field(description="Ground-truth boxes outside them.")
    num_detections: int = Field(description="Detections inside the sizes (ignored included).")
    num_ignored: int = Field(description="Detections matched to a don't-care box.")
    true_positives: int
    false_positives: int
    precision: list[float]
    recall: list[float]
    scores: list[float]


class EvalReport(BaseModel):
    """Per-class results in class order, and their mean (TAO: classes without ground truth
    count with AP 0)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    classes: list[ClassReport]
    mean_average_precision: float
    num_images: int
    config: EvaluationConfig

    @property
    def average_precisions(self) -> dict[str, float]:
        return {c.name: c.average_precision for c in self.classes}

    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)
