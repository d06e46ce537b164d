"""The TrainingRun resource (heron.dev/v1alpha1, namespaced): its spec as a checked model with
the CRD's fields, defaults and checks (charts/heron/crds/trainingruns.heron.dev.yaml; its CEL
rules are the model validators here), and the names of its status (docs/operator.md)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from heron_operator.kube import Resource
from heron_operator.spec import image_reference

TRAINING_RUNS = Resource("heron.dev", "v1alpha1", "trainingruns", "TrainingRun")

# status.phase
PENDING, RUNNING, SUCCEEDED, FAILED = "Pending", "Running", "Succeeded", "Failed"
TERMINAL = (SUCCEEDED, FAILED)
# status.step: the Job's steps in order (heron.training.STEPS)
STEPS = ("Train", "Prune", "Retrain", "Evaluate", "Export", "Calibrate")
# status.conditions[].type
TRAINED, READY = "Trained", "Ready"

# The CRD's patterns.
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_PRODUCT = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_QUANTITY = re.compile(
    r"(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?"
)
_DOT_DOT = re.compile(r"(^|/)[.][.](/|$)")


def _matching(pattern: re.Pattern[str], what: str) -> Any:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"expected {what}, got {value!r}")
        return value

    return AfterValidator(check)


def _relative(value: str) -> str:
    """A folder inside a volume: not absolute (pattern '^([^/].*)?$'), no '..' segment (CEL)."""
    if value.startswith("/"):
        raise ValueError(f"expected a relative path, got {value!r}")
    if _DOT_DOT.search(value):
        raise ValueError(f"must not contain a '..' segment, got {value!r}")
    return value


def _no_dot_dot(value: str) -> str:
    if _DOT_DOT.search(value):
        raise ValueError(f"must not contain a '..' segment, got {value!r}")
    return value


def _quantity(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"expected a quantity (an integer or a string), got {value!r}")
    if isinstance(value, str) and not _QUANTITY.fullmatch(value):
        raise ValueError(f"expected a quantity such as 500m, 2 or 16Gi, got {value!r}")
    return value


Name = Annotated[str, Field(min_length=1, max_length=253), _matching(_DNS_SUBDOMAIN, "a DNS name")]
SubPath = Annotated[str, Field(max_length=1024), AfterValidator(_relative)]
Quantity = Annotated[int | str, AfterValidator(_quantity)]


class _Spec(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class ConfigMapRef(_Spec):
    name: Name
    key: Annotated[
        str, Field(min_length=1, max_length=253), _matching(_CONFIG_KEY, "a ConfigMap key")
    ] = "spec.txt"


class SpecSource(_Spec):
    """A TAO spec: its text, or a key of a ConfigMap (exactly one, CEL)."""

    inline: str | None = Field(None, min_length=1, max_length=262144)
    config_map_ref: ConfigMapRef | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SpecSource:
        if (self.inline is None) == (self.config_map_ref is None):
            raise ValueError("give exactly one of inline and configMapRef")
        return self


class Dataset(_Spec):
    claim_name: Name
    sub_path: SubPath = ""
    mount_path: Annotated[
        str, Field(max_length=1024, pattern=r"^/.*$"), AfterValidator(_no_dot_dot)
    ] = "/data"


class Artifacts(_Spec):
    claim_name: Name
    sub_path: SubPath = Field("", description="The results folder; '' = trainingruns/<name>.")


class Prune(_Spec):
    threshold: float = Field(0.1, ge=0, le=1)
    normalizer: Literal["max", "L2"] = "max"
    equalization: Literal["union", "intersection", "arithmetic_mean", "geometric_mean"] = "union"
    granularity: int = Field(8, ge=1, le=1024)
    min_filters: int = Field(16, ge=1, le=4096)
    retrain_spec: SpecSource | None = None


class Calibration(_Spec):
    enabled: bool = True
    images: SubPath = Field("", description="Relative to the dataset's mountPath; '' = training.")
    batches: int | None = Field(None, ge=1, le=10000)  # None: every image (heron calibrate)
    batch_size: int = Field(8, ge=1, le=256)
    method: Literal["auto", "entropy", "percentile", "minmax"] = "auto"
    percentile: float | None = Field(None, gt=50, le=100)

    @model_validator(mode="after")
    def _percentile_with_its_method(self) -> Calibration:
        if self.percentile is not None and self.method != "percentile":
            raise ValueError("percentile is only read with method percentile")
        return self


class Gpu(_Spec):
    count: int = Field(1, ge=0, le=16)
    products: list[
        Annotated[str, Field(min_length=1, max_length=63), _matching(_PRODUCT, "a label value")]
    ] = Field(default_factory=list, max_length=32)

    @field_validator("products")
    @classmethod
    def _a_set(cls, products: list[str]) -> list[str]:
        if len(set(products)) != len(products):
            raise ValueError(f"expected distinct products (a set), got {products}")
        return products

    @model_validator(mode="after")
    def _products_need_gpus(self) -> Gpu:
        if self.products and self.count == 0:
            raise ValueError("products need count above 0")
        return self


class Resources(_Spec):
    requests: dict[str, Quantity] = Field(default_factory=dict)
    limits: dict[str, Quantity] = Field(default_factory=dict)


class TrainingRunSpec(_Spec):
    tao_spec: SpecSource
    dataset: Dataset
    artifacts: Artifacts
    epochs: int | None = Field(None, ge=0, le=10000)
    prune: Prune | None = None
    calibration: Calibration = Field(default_factory=Calibration)
    gpu: Gpu = Field(default_factory=Gpu)
    resources: Resources | None = None
    image: Annotated[str, Field(max_length=512), AfterValidator(image_reference)] = ""
    backoff_limit: int = Field(0, ge=0, le=10)
    active_deadline_seconds: int | None = Field(None, ge=60)

    def results_path(self, name: str) -> str:
        """The results folder, relative to the artifacts claim's root."""
        return self.artifacts.sub_path.strip("/") or f"trainingruns/{name}"
