"""The EngineRollout resource (heron.dev/v1alpha1, namespaced): its spec as a checked model,
the names of its status, and its label selector in the API server's query syntax
(charts/heron/crds/enginerollouts.heron.dev.yaml holds its CRD, docs/operator.md describes it).
"""

from __future__ import annotations

import math
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from heron_operator.kube import Resource

ENGINE_ROLLOUTS = Resource("heron.dev", "v1alpha1", "enginerollouts", "EngineRollout")

# status.phase (docs/operator.md, "The rollout")
PENDING, LOADING, CANARY = "Pending", "Loading", "Canary"
PROMOTING, PROMOTED = "Promoting", "Promoted"
ROLLING_BACK, ROLLED_BACK, FAILED = "RollingBack", "RolledBack", "Failed"
TERMINAL = (PROMOTED, ROLLED_BACK, FAILED)
# Phases in which some stream may run the canary version: a rollout that ends or is deleted
# in one of them puts every stream back on the stable version first.
ROUTED = (LOADING, CANARY, PROMOTING, ROLLING_BACK)
# status.conditions[].type
READY, CANARY_HEALTHY = "Ready", "CanaryHealthy"

# Go's time.ParseDuration units the CRD's pattern admits.
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
SOAK_MIN_S, SOAK_MAX_S = 60.0, 168 * 3600.0


def parse_duration(text: str) -> float:
    """Seconds of a Go duration as the CRD admits it (`10m`, `1h30m`, `90s`)."""
    parts = _DURATION.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"expected a duration such as 10m, 1h30m or 90s, got {text!r}")
    return sum(float(n) * _UNITS[u] for n, u in parts)


class _Spec(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class Requirement(_Spec):
    key: str = Field(min_length=1, max_length=317)
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _values_fit(self) -> Requirement:
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"{self.operator} needs values")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"{self.operator} takes no values")
        return self

    def query(self) -> str:
        if self.operator == "Exists":
            return self.key
        if self.operator == "DoesNotExist":
            return f"!{self.key}"
        return f"{self.key} {self.operator.lower()} ({','.join(self.values)})"


class LabelSelector(_Spec):
    """A metav1.LabelSelector; empty selects everything."""

    match_labels: dict[str, str] = Field(default_factory=dict)
    match_expressions: list[Requirement] = Field(default_factory=list)

    def query(self) -> str:
        """The `labelSelector` query parameter's syntax: `a=b,c in (d,e),!f`."""
        parts = [f"{k}={v}" for k, v in sorted(self.match_labels.items())]
        return ",".join(parts + [r.query() for r in self.match_expressions])


class CanaryStreams(_Spec):
    percent: int | None = Field(None, ge=1, le=100)
    count: int | None = Field(None, ge=1, le=100000)

    @model_validator(mode="after")
    def _one(self) -> CanaryStreams:
        if (self.percent is None) == (self.count is None):
            raise ValueError("expected exactly one of canary.streams.percent and count")
        return self

    def of(self, total: int) -> int:
        """How many of `total` streams run the canary: a share rounded up, or a number; at
        least one, at most all."""
        wanted = math.ceil(total * self.percent / 100) if self.percent else (self.count or 1)
        return max(1, min(wanted, total))


class Canary(_Spec):
    streams: CanaryStreams = Field(default_factory=lambda: CanaryStreams(percent=10))


class Gates(_Spec):
    max_ap_drop: float = Field(0.02, ge=0, le=1)
    min_fps_ratio: float = Field(0.95, ge=0, le=1)
    max_error_rate: float = Field(0.01, ge=0, le=1)
    max_detection_rate_drift: float = Field(0.2, ge=0, le=1)


class EngineRolloutSpec(_Spec):
    engine_build: str = Field(min_length=1, max_length=253)
    selector: LabelSelector
    canary: Canary = Field(default_factory=Canary)
    soak: str = "10m"
    gates: Gates = Field(default_factory=Gates)
    action: Literal["", "Promote", "Abort"] = ""

    @field_validator("soak")
    @classmethod
    def _soak_range(cls, value: str) -> str:
        seconds = parse_duration(value)
        if not SOAK_MIN_S <= seconds <= SOAK_MAX_S:
            raise ValueError(f"expected a soak between 1m and 168h, got {value!r}")
        return value

    @property
    def soak_s(self) -> float:
        return parse_duration(self.soak)
