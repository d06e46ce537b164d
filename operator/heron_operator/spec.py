"""The EngineBuild resource (heron.dev/v1alpha1, namespaced): its spec as a checked model, and
the names of its status (charts/heron/crds holds its CRD, docs/operator.md describes it)."""

from __future__ import annotations

import posixpath
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
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

# As the CRD (charts/heron/crds/enginebuilds.heron.dev.yaml) has them: a path on the model
# volume is absolute, under the volume's mount (pattern '^/models/.+$', 2..4096 characters) and
# has no '..' segment (CEL); a Triton model name matches modelName's pattern, at most 63
# characters; an image is a reference (registry/path:tag@digest, IMAGE_PATTERN), no scheme.
PATH_MAX = 4096
MODEL_NAME_PATTERN = r"^[a-z0-9]([-_a-z0-9]*[a-z0-9])?$"
MODEL_NAME_MAX = 63
VOLUME_PATH_PATTERN = r"^/models/.+$"
_VOLUME_PATH = re.compile(VOLUME_PATH_PATTERN)
DOT_DOT_PATTERN = r"(^|/)[.][.](/|$)"  # the CRD's CEL: !self.matches('<this>')
DOT_DOT = re.compile(DOT_DOT_PATTERN)
_DOMAIN = (
    r"[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*(:[0-9]+)?"
)
_COMPONENT = r"[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*"
IMAGE_PATTERN = (
    rf"^({_DOMAIN}/)?{_COMPONENT}(/{_COMPONENT})*(:[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?"
    r"(@[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$"
)
_IMAGE = re.compile(IMAGE_PATTERN)


def _on_the_volume(value: str) -> str:
    if not _VOLUME_PATH.match(value):
        raise ValueError(
            f"expected an absolute path on the model volume (/models/...), got {value!r}"
        )
    if DOT_DOT.search(value):
        raise ValueError(f"must not contain a '..' segment, got {value!r}")
    return value


def image_reference(value: str) -> str:
    """An image reference as a pod spec takes it (`registry:5000/path/name:tag@sha256:...`),
    no scheme, no spaces; or '' (the operator's image)."""
    if value and not _IMAGE.match(value):
        raise ValueError(
            "expected an image reference such as ghcr.io/heron-project/heron-engine:0.1.0 "
            f"(no scheme, lower-case path), got {value!r}"
        )
    return value


VolumePath = Annotated[str, Field(max_length=PATH_MAX), AfterValidator(_on_the_volume)]
Image = Annotated[str, Field(max_length=512), AfterValidator(image_reference)]


class _Spec(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class ModelSource(_Spec):
    onnx: VolumePath | None = Field(None, description="The FP32 ONNX on the model volume.")
    calibration_cache: VolumePath | None = Field(
        None, description="Its TensorRT calibration cache, on the model volume."
    )
    from_training_run: str | None = Field(
        None, min_length=1, description="A TrainingRun whose ONNX to build."
    )

    @model_validator(mode="after")
    def _one_source(self) -> ModelSource:
        if (self.onnx is None) == (self.from_training_run is None):
            raise ValueError("expected exactly one of model.onnx and model.fromTrainingRun")
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
    calibration_images: VolumePath | None = Field(
        None, description="INT8 from model.onnx: the images it is calibrated on (--images)."
    )
    eval_data: VolumePath | None = Field(
        None, description="INT8 from model.onnx: the KITTI folder the gate scores on (--eval-data)."
    )


class Rtx(_Spec):
    enabled: bool = True


class OnnxRuntime(_Spec):
    """Also publish the model for ONNX Runtime (CPU pipelines; Triton's onnxruntime backend)."""

    enabled: bool = False


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
    onnx_runtime: OnnxRuntime = Field(default_factory=OnnxRuntime)
    model_repository: ModelRepository
    image: Image | None = None

    @field_validator("model_name")
    @classmethod
    def _triton_name(cls, value: str) -> str:
        if len(value) > MODEL_NAME_MAX or not re.fullmatch(MODEL_NAME_PATTERN, value):
            raise ValueError(
                f"expected a model name of at most {MODEL_NAME_MAX} lower-case letters, digits, "
                f"'-' and '_', starting and ending with a letter or digit, got {value!r}"
            )
        return value
