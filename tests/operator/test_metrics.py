"""The operator's metrics (docs/observability.md, "Operator metrics"): set from the statuses the
controllers write, gone with the object, errors counted by kind."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from heron_operator.metrics import OperatorMetrics, counted, job_durations
from heron_operator.settings import OperatorSettings
from heron_operator.steps import Context

Json = dict[str, Any]


def value(metrics: OperatorMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def job(role: str, start: str, end: str | None) -> Json:
    status = {"startTime": start} | ({"completionTime": end} if end else {})
    return {"metadata": {"labels": {"heron.dev/role": role}}, "status": status}


def test_an_engine_builds_gate_and_times() -> None:
    metrics = OperatorMetrics()
    build = {
        "metadata": {"name": "facemask-int8"},
        "spec": {"modelName": "facemask"},
        "status": {"version": 1733600000, "gate": {"apDrop": 0.012, "passed": True}},
    }
    jobs = {
        "gate": job("gate", "2026-12-07T10:00:00Z", "2026-12-07T10:05:00Z"),
        "gpu-a": job("gpu", "2026-12-07T10:06:00Z", "2026-12-07T10:10:00Z"),
        "gpu-b": job("gpu", "2026-12-07T10:07:00Z", "2026-12-07T10:12:30Z"),
        "rtx": job("rtx", "2026-12-07T10:06:30Z", None),  # still running: not counted
    }
    metrics.engine_build("video", build, job_durations(jobs))
    labels = {"namespace": "video", "build": "facemask-int8", "model": "facemask",
              "version": "1733600000"}  # fmt: skip
    assert value(metrics, "heron_operator_engine_build_gate_passed", **labels) == 1.0
    assert value(metrics, "heron_operator_engine_build_ap_drop", **labels) == 0.012
    ours = {"namespace": "video", "build": "facemask-int8"}
    assert value(metrics, "heron_operator_engine_build_duration_seconds", **ours) == 390.0
    assert value(metrics, "heron_operator_engine_calibration_duration_seconds", **ours) == 300.0
    metrics.forget("EngineBuild", "video", "facemask-int8")
    assert value(metrics, "heron_operator_engine_build_gate_passed", **labels) is None


def test_a_rollouts_phase_and_gates() -> None:
    metrics = OperatorMetrics()
    status = {
        "phase": "RollingBack",
        "phaseTime": "2026-12-07T10:00:00Z",
        "gates": {"fpsRatio": 0.99, "errorRate": 0.0, "detectionRateDrift": 1.0, "apDrop": None,
                  "broken": ["detectionRateDrift"], "passed": False},
    }  # fmt: skip
    metrics.rollout("video", "facemask-int8", status)
    ours = {"namespace": "video", "rollout": "facemask-int8"}
    phase = "heron_operator_rollout_phase"
    assert value(metrics, phase, phase="RollingBack", **ours) == 1.0
    assert value(metrics, phase, phase="Canary", **ours) == 0.0
    started = value(metrics, "heron_operator_rollout_phase_started_timestamp_seconds", **ours)
    assert started == 1796637600.0
    broken = "heron_operator_rollout_gate_broken"
    assert value(metrics, broken, gate="detectionRateDrift", **ours) == 1.0
    assert value(metrics, broken, gate="fpsRatio", **ours) == 0.0
    assert value(metrics, broken, gate="apDrop", **ours) is None  # not read: no series
    assert value(metrics, "heron_operator_rollout_gate_value", gate="fpsRatio", **ours) == 0.99
    # An EngineBuild of the same name is another object: forgetting it leaves the rollout.
    metrics.forget("EngineBuild", "video", "facemask-int8")
    assert value(metrics, phase, phase="RollingBack", **ours) == 1.0
    metrics.forget("EngineRollout", "video", "facemask-int8")
    assert value(metrics, phase, phase="RollingBack", **ours) is None


def test_handler_errors_are_counted_by_kind_and_raised() -> None:
    context = Context(kube=None, settings=OperatorSettings())  # type: ignore[arg-type]

    @counted("EngineRollout")
    async def failing(**_: Any) -> None:
        raise RuntimeError("pipeline away")

    errors = "heron_operator_reconcile_errors_total"
    assert value(context.metrics, errors, kind="EngineRollout") == 0.0
    with pytest.raises(RuntimeError):
        asyncio.run(failing(memo=context, name="x"))
    assert value(context.metrics, errors, kind="EngineRollout") == 1.0
    assert value(context.metrics, errors, kind="EngineBuild") == 0.0
