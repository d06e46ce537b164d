"""The result of an evaluation: per-class AP with its precision/recall curve, and mAP."""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field

from heron.evaluation.ap.config import EvaluationConfig

CURVES = ("precision", "recall", "scores")  # ClassReport's per-detection lists


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

    def summary_json(self, curves_file: str | None = None) -> str:
        """The report without the per-detection curves (they grow with the detections: 16 MB
        for 80 images), naming the file that holds them."""
        data = self.model_dump(mode="json", exclude={"classes": {"__all__": set(CURVES)}})
        if curves_file is not None:
            data["curves_file"] = curves_file
        return json.dumps(data, indent=2) + "\n"

    def curves_json(self, digits: int = 6) -> str:
        """Each class's precision, recall and score per detection (by descending score), in
        one compact line of JSON."""
        curves = {
            c.name: {name: [round(v, digits) for v in getattr(c, name)] for name in CURVES}
            for c in self.classes
        }
        return json.dumps(curves, separators=(",", ":")) + "\n"
