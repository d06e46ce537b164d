"""The EngineBuild resource (heron.dev/v1alpha1, namespaced): its spec as a checked model, and
the names of its status (charts/heron/crds holds its CRD, docs/operator.md describes it)."""

from __future__ import annotations

import posixpath
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from heron_operator.kube import Resource

ENGINE_BUILDS = Resource("heron.dev", "v1alpha1", "enginebuilds", "EngineBuild")

# status.phase
PENDING, GATING, BUILDING, SUCCEEDED, FAILED = (
    "Pending",
    "Gating",
    "Building",
    "Succeeded",
    "Failed",
)
TERMINAL = (SUCCEEDED, FAILED)
# status.conditions[].type
GATED, BUILT, READY = "Gated", "Built", "Ready"

# Paths the model volume gives, for INT8: the calibration images and the KITTI folder the gate
# scores on (the EngineBuild schema has no field for them yet).
CALIBRATION_IMAGES_ANNOTATION = "heron.dev/calibration-images"
EVAL_DATA_ANNOTATION = "heron.dev/eval-data"

_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,126}$")


class _Spec(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class ModelSource(_Spec):
    onnx: str | None = Field(
        None, description="FP32 ONNX on the model volume (relative to the claim, or absolute)."
    )
    calibration_cache: str | None = Field(None, description="A TensorRT calibration cache.")
    from_training_run: str | None = Field(None, description="A TrainingRun whose ONNX to build.")

    @model_validator(mode="after")
    def _one_source(self) -> ModelSource:
        if not self.onnx and not self.from_training_run:
            raise ValueError("expected model.onnx or model.fromTrainingRun")
        return self


class Batch(_Spec):
    min: int = Field(1, ge=1)
    opt: int = Field(4, ge=1)
    max: int = Field(16, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> Batch:
        if not self.min <= self.opt <= self.max:
            got = f"{self.min}, {self.opt}, {self.max}"
            raise ValueError(f"expected batch.min ≤ batch.opt ≤ batch.max, got {got}")
        return self


class AccuracyGate(_Spec):
    max_ap_drop: float = Field(
        0.02,
        ge=0,
        le=1,
        description="Largest INT8 mAP loss allowed, as a fraction (0.02 = 2 points).",
    )


class Rtx(_Spec):
    enabled: bool = True


class ModelRepository(_Spec):
    claim_name: str = Field(min_length=1)
    sub_path: str = Field("", description="The Triton repository's folder inside the claim.")

    @field_validator("sub_path")
    @classmethod
    def _relative(cls, value: str) -> str:
        clean = posixpath.normpath(value.strip("/")) if value.strip("/") else ""
        if clean.startswith(".."):
            raise ValueError(f"expected a folder inside the claim, got {value!r}")
        return "" if clean == "." else clean


class EngineBuildSpec(_Spec):
    model: ModelSource
    model_name: str
    precision: Literal["FP32", "FP16", "INT8"] = "FP16"
    batch: Batch = Field(default_factory=Batch)
    accuracy_gate: AccuracyGate = Field(default_factory=AccuracyGate)
    gpu_products: list[str] = Field(default_factory=list)
    rtx: Rtx = Field(default_factory=Rtx)
    model_repository: ModelRepository
    image: str | None = None

    @field_validator("model_name")
    @classmethod
    def _triton_name(cls, value: str) -> str:
        if not _MODEL_NAME.match(value):
            raise ValueError(
                f"expected a Triton model name (letters, digits, '_', '.', '-'), got {value!r}"
            )
        return value
