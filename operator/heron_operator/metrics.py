"""What the operator exports for Prometheus (docs/observability.md, "Operator metrics"): the
INT8 gate and build times of each EngineBuild, the phase and gate readings of each
EngineRollout, and handler errors. The alerts HeronEngineGateFailed and HeronRolloutStuck and
the "Models and rollouts" dashboard read them (charts/heron/rules, charts/heron/dashboards).

Every series names the object's namespace in its own `namespace` label, so the chart's
PodMonitor scrapes the operator with honorLabels (the pod's namespace is the operator's).
Values are set from the status the controllers write, after each write: what the metrics say
is what `kubectl get` says.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from heron_operator.conditions import parse_time
from heron_operator.rollout_spec import (
    CANARY,
    FAILED,
    LOADING,
    PENDING,
    PROMOTED,
    PROMOTING,
    ROLLED_BACK,
    ROLLING_BACK,
)

Json = Mapping[str, Any]
ROLLOUT_PHASES = (PENDING, LOADING, CANARY, PROMOTING, PROMOTED, ROLLING_BACK, ROLLED_BACK, FAILED)
GATES = ("apDrop", "fpsRatio", "errorRate", "detectionRateDrift")  # status.gates keys


class OperatorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        build = ["namespace", "build", "model", "version"]
        self.gate_passed = Gauge(
            "heron_operator_engine_build_gate_passed",
            "1 when an EngineBuild's INT8 accuracy gate passed, 0 when it failed.",
            build, registry=r,
        )  # fmt: skip
        self.ap_drop = Gauge(
            "heron_operator_engine_build_ap_drop",
            "The mAP an EngineBuild's INT8 model lost against FP32 (0-1).",
            build, registry=r,
        )  # fmt: skip
        self.build_seconds = Gauge(
            "heron_operator_engine_build_duration_seconds",
            "Time of an EngineBuild's plan builds, from the first start to the last end.",
            ["namespace", "build"], registry=r,
        )  # fmt: skip
        self.calibration_seconds = Gauge(
            "heron_operator_engine_calibration_duration_seconds",
            "Time of an EngineBuild's gate Job (INT8 calibration and scoring).",
            ["namespace", "build"], registry=r,
        )  # fmt: skip
        self.phase = Gauge(
            "heron_operator_rollout_phase",
            "1 for the phase an EngineRollout is in, 0 for the others.",
            ["namespace", "rollout", "phase"], registry=r,
        )  # fmt: skip
        self.phase_started = Gauge(
            "heron_operator_rollout_phase_started_timestamp_seconds",
            "When an EngineRollout entered its phase (Unix time).",
            ["namespace", "rollout"], registry=r,
        )  # fmt: skip
        self.gate_value = Gauge(
            "heron_operator_rollout_gate_value",
            "The latest reading of each gate of an EngineRollout's canary.",
            ["namespace", "rollout", "gate"], registry=r,
        )  # fmt: skip
        self.gate_broken = Gauge(
            "heron_operator_rollout_gate_broken",
            "1 while the latest reading breaks its gate.",
            ["namespace", "rollout", "gate"], registry=r,
        )  # fmt: skip
        self.errors = Counter(
            "heron_operator_reconcile_errors_total",
            "Handler runs that raised, by resource kind (retried by kopf).",
            ["kind"], registry=r,
        )  # fmt: skip
        for kind in ("EngineBuild", "TrainingRun", "EngineRollout"):
            self.errors.labels(kind)  # 0, not absent, until the first error
        # Which label sets each object has, so that its series go when it does.
        self._series: dict[tuple[str, str, str], set[tuple[Gauge, tuple[str, ...]]]] = {}

    def _set(self, kind: str, gauge: Gauge, labels: tuple[str, ...], value: float) -> None:
        """`labels` start with the object's namespace and name."""
        gauge.labels(*labels).set(value)
        self._series.setdefault((kind, labels[0], labels[1]), set()).add((gauge, labels))

    def engine_build(
        self, namespace: str, build: Json, durations: tuple[float | None, float | None]
    ) -> None:
        """From an EngineBuild's status (its gate) and its Jobs' times (build, calibration)."""
        name = str(build["metadata"]["name"])
        status = build.get("status") or {}
        gate = status.get("gate") or {}
        model = str((build.get("spec") or {}).get("modelName", ""))
        labels = (namespace, name, model, str(status.get("version", "")))
        if gate.get("passed") is not None:
            self._set("EngineBuild", self.gate_passed, labels, 1 if gate["passed"] else 0)
        if gate.get("apDrop") is not None:
            self._set("EngineBuild", self.ap_drop, labels, float(gate["apDrop"]))
        built, calibrated = durations
        if built is not None:
            self._set("EngineBuild", self.build_seconds, (namespace, name), built)
        if calibrated is not None:
            self._set("EngineBuild", self.calibration_seconds, (namespace, name), calibrated)

    def rollout(self, namespace: str, name: str, status: Json) -> None:
        """From an EngineRollout's status: its phase, since when, its gates' readings."""
        current = status.get("phase") or PENDING
        for phase in ROLLOUT_PHASES:
            self._set(
                "EngineRollout", self.phase, (namespace, name, phase), 1 if phase == current else 0
            )
        started = parse_time(status.get("phaseTime"))
        if started is not None:
            self._set("EngineRollout", self.phase_started, (namespace, name), started)
        gates = status.get("gates") or {}
        broken = set(gates.get("broken") or [])
        for gate in GATES:
            value = gates.get(gate)
            if value is not None:
                self._set("EngineRollout", self.gate_value, (namespace, name, gate), float(value))
                self._set(
                    "EngineRollout",
                    self.gate_broken,
                    (namespace, name, gate),
                    1 if gate in broken else 0,
                )

    def forget(self, kind: str, namespace: str, name: str) -> None:
        """A deleted object's series go (a label set of a gone object would stay forever)."""
        for gauge, labels in self._series.pop((kind, namespace, name), set()):
            gauge.remove(*labels)


def job_durations(jobs: Mapping[str, Json]) -> tuple[float | None, float | None]:
    """(the plan builds' time from the first start to the last end, the gate Job's time), each
    None until it has ended."""
    builds, gate = [], None
    for job in jobs.values():
        status = job.get("status") or {}
        start, end = parse_time(status.get("startTime")), parse_time(status.get("completionTime"))
        if start is None or end is None:
            continue
        role = ((job.get("metadata") or {}).get("labels") or {}).get("heron.dev/role")
        if role == "gate":
            gate = end - start
        else:
            builds.append((start, end))
    built = max(e for _, e in builds) - min(s for s, _ in builds) if builds else None
    return built, gate


Handler = Callable[..., Coroutine[Any, Any, None]]


def counted(kind: str) -> Callable[[Handler], Handler]:
    """A kopf handler with what it raises counted in the memo's metrics (and raised on, for kopf
    to retry)."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def run(**kwargs: Any) -> None:
            try:
                await handler(**kwargs)
            except Exception:
                metrics = getattr(kwargs.get("memo"), "metrics", None)
                if isinstance(metrics, OperatorMetrics):
                    metrics.errors.labels(kind).inc()
                raise

        return run

    return wrap
