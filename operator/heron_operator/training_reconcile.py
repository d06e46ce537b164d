"""One TrainingRun, brought a step closer to trained: observe the cluster, decide, act.

Level-based, as the EngineBuild's step (reconcile.py): every call reads the TrainingRun, its
Job and the Job's pods afresh, so it may run any number of times, from any handler, in any
order. The Job's name is deterministic (a second create is a 409); status is written with the
resourceVersion read (a 409 redoes the step on what is there now).

A generation (metadata.generation, moved by spec changes) runs one Job. Its first step deletes
the Jobs of earlier generations and starts the status over; Succeeded or Failed is final until
the spec changes. While the Job runs, `status.step` is the newest `heron-step: <step>` line of
its pod's log; when it ends, the numbers come from its termination message (job_report.py).
"""

from __future__ import annotations

import contextlib
import logging
import posixpath
from dataclasses import dataclass, field
from typing import Any

import kopf
from pydantic import ValidationError

from heron_operator import conditions as cond
from heron_operator import jobs, training_jobs
from heron_operator.job_report import JobReport, step_of_line
from heron_operator.kube import JOBS, PODS, ApiError, ConflictError, NotFoundError, Resource
from heron_operator.settings import OperatorSettings
from heron_operator.steps import (
    Context,
    Event,
    body,
    fresh_step,
    last_line,
    post,
    transitions,
    validation_message,
    write_status,
)
from heron_operator.training_spec import (
    FAILED,
    PENDING,
    READY,
    RUNNING,
    STEPS,
    SUCCEEDED,
    TERMINAL,
    TRAINED,
    TRAINING_RUNS,
    TrainingRunSpec,
)

Json = dict[str, Any]
log = logging.getLogger(__name__)
CONFIG_MAPS = Resource("", "v1", "configmaps", "ConfigMap")
LOG_LINES = 500  # of the pod's log read for its newest step line (else the last one known)
_WARNINGS = {"TrainingFailed", "InvalidSpec", "NoReport", "WaitingForConfigMap", "JobRefused"}


@dataclass(frozen=True)
class Observed:
    job: Json | None  # this generation's Job
    pods: list[Json]  # the Job's pods, newest first
    report: JobReport | None  # the termination message, once the Job has finished
    log_step: str | None  # the newest step line of the running pod's log
    missing: list[str]  # ConfigMaps (or keys) the specs name that are not there (no Job yet)
    now: str  # RFC 3339


@dataclass
class Decision:
    status: Json
    create: Json | None = None  # the Job's manifest, not yet adopted
    events: list[Event] = field(default_factory=list)  # besides the condition transitions


async def reconcile(ctx: Context, namespace: str, name: str) -> None:
    """One step for the TrainingRun `namespace/name`; nothing when it is gone or going."""
    await fresh_step(ctx, TRAINING_RUNS, namespace, name, lambda run: _step(ctx, run))


async def delete_jobs(ctx: Context, namespace: str, name: str) -> int:
    """Delete every Job of the TrainingRun, of every generation (the finalizer's work)."""
    selector = f"{training_jobs.RUN_LABEL}={training_jobs.run_label(name)}"
    found = await ctx.kube.list(JOBS, namespace, labels=selector)
    for job in found:
        await ctx.kube.delete(JOBS, namespace, job["metadata"]["name"])
    return len(found)


async def _step(ctx: Context, run: Json) -> None:
    meta = run["metadata"]
    generation = int(meta.get("generation", 1))
    before: Json = run.get("status") or {}
    if before.get("observedGeneration") == generation and before.get("phase") in TERMINAL:
        return
    if before.get("observedGeneration") != generation:
        run = await _start_generation(ctx, run, generation)
    status: Json = run.get("status") or {}
    try:
        spec = TrainingRunSpec.model_validate(run.get("spec") or {})
    except ValidationError as e:
        change = cond.Condition(TRAINED, "False", "InvalidSpec", validation_message(e))
        decision = Decision(_with(status, generation, FAILED, change))
    else:
        seen = await _observe(ctx, run, spec, generation)
        decision = decide(run, spec, seen, ctx.settings)
    if decision.create is not None:
        kopf.adopt(decision.create, owner=body(run))
        refusal = await create_job(ctx, meta["namespace"], decision.create)
        if refusal:
            change = cond.Condition(TRAINED, "False", "JobRefused", refusal)
            decision = Decision(_with(decision.status, generation, FAILED, change))
    if decision.status != status:
        await write_status(
            ctx, TRAINING_RUNS, run, decision.status
        )  # a 409 redoes the step: no events yet
    for event in decision.events + transitions(before, decision.status, _WARNINGS):
        post(run, event)


async def create_job(ctx: Context, namespace: str, job: Json) -> str:
    """Create the Job; the API server's reason when it refuses it for good (an inline spec too
    long for a pod annotation, say), else ''."""
    try:
        await ctx.kube.create(JOBS, namespace, job)
    except ConflictError:
        pass  # an earlier step's, whose status write lost a race
    except ApiError as e:
        if e.status not in (400, 422):
            raise  # not the Job's fault: kopf retries the step
        return f"the API server refused Job {job['metadata']['name']}: {e.message}"
    return ""


async def _start_generation(ctx: Context, run: Json, generation: int) -> Json:
    """A new generation: the old one's Jobs go, the status starts over."""
    meta, old = run["metadata"], run.get("status") or {}
    label = training_jobs.run_label(meta["name"])
    selector = f"{training_jobs.RUN_LABEL}={label},{training_jobs.GENERATION_LABEL}!={generation}"
    for job in await ctx.kube.list(JOBS, meta["namespace"], labels=selector):
        await ctx.kube.delete(JOBS, meta["namespace"], job["metadata"]["name"])
    message = f"generation {generation}: starting its Job"
    changes = [
        cond.Condition(TRAINED, "Unknown", "Pending", message),
        cond.Condition(READY, "False", "Pending", message),
    ]
    status = {
        "observedGeneration": generation,
        "phase": PENDING,
        "message": message,
        "conditions": cond.apply(old.get("conditions") or [], changes, generation=generation),
    }
    return await write_status(ctx, TRAINING_RUNS, run, status)


# --- observing ---------------------------------------------------------------------------------


async def _observe(ctx: Context, run: Json, spec: TrainingRunSpec, generation: int) -> Observed:
    ns, name = run["metadata"]["namespace"], run["metadata"]["name"]
    status = run.get("status") or {}
    job = None
    with contextlib.suppress(NotFoundError):
        job = await ctx.kube.get(JOBS, ns, training_jobs.job_name(name, generation))
    if job is None:
        missing = await _missing_config_maps(ctx, ns, spec)
        return Observed(None, [], None, None, missing, cond.now())
    selector = f"batch.kubernetes.io/job-name={job['metadata']['name']}"
    pods = await ctx.kube.list(PODS, ns, labels=selector)
    pods.sort(key=lambda p: p["metadata"].get("creationTimestamp") or "", reverse=True)
    ended = jobs.phase(job) in TERMINAL
    report = _report(job, pods) if ended and status.get("phase") not in TERMINAL else None
    running = next((p for p in pods if _pod_phase(p) == RUNNING), None)
    step = await _log_step(ctx, ns, running) if running and not ended else None
    return Observed(job, pods, report, step, [], cond.now())


async def _missing_config_maps(ctx: Context, namespace: str, spec: TrainingRunSpec) -> list[str]:
    """The specs' ConfigMaps (and keys) not there: a pod mounting them could not start."""
    refs = [spec.tao_spec.config_map_ref]
    if spec.prune is not None and spec.prune.retrain_spec is not None:
        refs.append(spec.prune.retrain_spec.config_map_ref)
    missing = []
    for ref in (r for r in refs if r is not None):
        try:
            found = await ctx.kube.get(CONFIG_MAPS, namespace, ref.name)
        except NotFoundError:
            missing.append(f"ConfigMap {ref.name}")
            continue
        if ref.key not in (found.get("data") or {}):
            missing.append(f"key {ref.key} of ConfigMap {ref.name}")
    return missing


def _report(job: Json, pods: list[Json]) -> JobReport:
    """The termination message of the pod that ended the Job (job_report.py wrote it): the
    succeeded one of a succeeded Job (earlier attempts may have failed), else the newest."""
    ended = jobs.phase(job)
    for pod in sorted(pods, key=lambda p: _pod_phase(p) == ended, reverse=True):  # stable
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            message = ((container.get("state") or {}).get("terminated") or {}).get("message")
            if message:
                return JobReport.from_message(message)
    return JobReport(ok=None, message="" if ended == SUCCEEDED else jobs.failure_message(job))


async def _log_step(ctx: Context, namespace: str, pod: Json) -> str | None:
    """The newest step line of the pod's log; None when none is in its last lines or the log
    cannot be read (the status keeps the last step it knew)."""
    try:
        text = await ctx.kube.pod_log(
            namespace, pod["metadata"]["name"], container=training_jobs.CONTAINER,
            tail_lines=LOG_LINES,
        )  # fmt: skip
    except ApiError as e:
        log.debug("no log of pod %s: %s", pod["metadata"]["name"], e)
        return None
    return step_of(text)


def step_of(log_text: str) -> str | None:
    """The step of the newest `heron-step: <step>` line (plain, or a JSON log line's message),
    if one names a known step."""
    for line in reversed(log_text.splitlines()):
        step = step_of_line(line)
        if step in STEPS:
            return step
    return None


def _pod_phase(pod: Json) -> str:
    return str((pod.get("status") or {}).get("phase") or PENDING)


# --- deciding ----------------------------------------------------------------------------------


def decide(
    run: Json, spec: TrainingRunSpec, seen: Observed, settings: OperatorSettings
) -> Decision:
    """The status this step leads to and the Job it needs; no I/O."""
    status = dict(run.get("status") or {})
    generation = int(run["metadata"].get("generation", 1))
    job = seen.job
    if job is None:
        if seen.missing:
            message = f"waiting for {' and '.join(seen.missing)} (the TAO spec)"
            waiting = cond.Condition(TRAINED, "False", "WaitingForConfigMap", message)
            return Decision(_with(status, generation, PENDING, waiting, at=seen.now))
        manifest = training_jobs.manifest(run, spec, settings)
        name = manifest["metadata"]["name"]
        status["job"] = name
        created = cond.Condition(TRAINED, "Unknown", "JobCreated", f"created Job {name}")
        event = Event("Normal", "JobCreated", f"created Job {name}")
        return Decision(_with(status, generation, PENDING, created, at=seen.now), manifest, [event])
    status["job"] = job["metadata"]["name"]
    ended = jobs.phase(job)
    if ended == SUCCEEDED and status.get("phase") not in TERMINAL:
        _finish(status, job, seen)
        return _succeeded(status, generation, spec, run["metadata"]["name"], seen)
    if ended == FAILED and status.get("phase") not in TERMINAL:
        _finish(status, job, seen)
        return _failed(status, generation, job, seen)
    if ended in TERMINAL:
        return Decision(status)
    return _active(status, generation, job, seen)


def _active(status: Json, generation: int, job: Json, seen: Observed) -> Decision:
    """Pending until a pod of the Job runs; then Running at the step its log names, until the
    Job ends (a pod that has ended before the Job says so, or a retry's pod still pending, do
    not make it Pending again)."""
    started = any(_pod_phase(p) in (RUNNING, SUCCEEDED, FAILED) for p in seen.pods)
    if not started and status.get("phase") != RUNNING:
        message = _waiting_message(seen.pods) or f"waiting for a pod of Job {status['job']}"
        pending = cond.Condition(TRAINED, "Unknown", "JobPending", message)
        return Decision(_with(status, generation, PENDING, pending, at=seen.now))
    events = []
    step = seen.log_step or status.get("step")
    if step and step != status.get("step"):
        status["step"] = step
        events.append(Event("Normal", "StepStarted", f"step {step} started"))
    status.setdefault("startTime", (job.get("status") or {}).get("startTime") or seen.now)
    message = f"running step {step} (Job {status['job']})" if step else "running"
    running_condition = cond.Condition(TRAINED, "Unknown", "Running", message)
    return Decision(
        _with(status, generation, RUNNING, running_condition, at=seen.now), None, events
    )


def _waiting_message(pods: list[Json]) -> str:
    """Why the newest pod has not started (the scheduler's or the kubelet's word), if known."""
    for pod in pods[:1]:
        for c in (pod.get("status") or {}).get("conditions") or []:
            if c.get("status") == "False" and c.get("message"):
                return f"pod {pod['metadata']['name']}: {c.get('reason', '')} {c['message']}"
        for c in (pod.get("status") or {}).get("containerStatuses") or []:
            waiting = (c.get("state") or {}).get("waiting") or {}
            if waiting.get("reason"):
                text = f"{waiting['reason']} {waiting.get('message', '')}".strip()
                return f"pod {pod['metadata']['name']}: {text}"
    return ""


def _succeeded(
    status: Json, generation: int, spec: TrainingRunSpec, name: str, seen: Observed
) -> Decision:
    report = seen.report or JobReport(ok=None)
    train = report.train
    if not report.ok or train is None:
        why = report.message or "no report.json numbers in its termination message"
        message = f"Job {status['job']} succeeded without a readable report: {last_line(why)}"
        failed = cond.Condition(TRAINED, "False", "NoReport", message)
        return Decision(_with(status, generation, FAILED, failed, at=seen.now))
    status.update(results_status(train, spec, name))
    summary = summarise(status)
    trained = cond.Condition(TRAINED, "True", "Trained", summary)
    ready = cond.Condition(READY, "True", "Trained", summary)
    return Decision(_with(status, generation, SUCCEEDED, trained, ready=ready, at=seen.now))


def results_status(train: Json, spec: TrainingRunSpec, name: str) -> Json:
    """status.ap, mAP, int8 and artifacts from the Job's report (its paths relative to the
    results folder; the status's to the claim's root)."""
    folder = spec.results_path(name)
    files = train.get("artifacts") or {}
    artifacts = {"claimName": spec.artifacts.claim_name, "path": folder}
    for key in ("checkpoint", "onnx", "calibrationCache", "report"):
        if files.get(key):
            artifacts[key] = posixpath.join(folder, str(files[key]))
    result: Json = {"artifacts": artifacts}
    if isinstance(train.get("ap"), dict):
        result["ap"] = {str(k): float(v) for k, v in train["ap"].items()}
    if train.get("mAP") is not None:
        result["mAP"] = float(train["mAP"])
    int8 = train.get("int8") or {}
    numbers = {k: int8.get(k) for k in ("ap", "mAP", "apDrop") if int8.get(k) is not None}
    if numbers:
        result["int8"] = numbers
    return result


def summarise(status: Json) -> str:
    parts = [f"mAP {status['mAP']:.4f}" if "mAP" in status else "no validation images"]
    drop = (status.get("int8") or {}).get("apDrop")
    if drop is not None:
        parts.append(f"INT8 loses {drop * 100:.2f} mAP points")
    return "; ".join(parts) + f"; ONNX {status['artifacts'].get('onnx', '-')}"


def _failed(status: Json, generation: int, job: Json, seen: Observed) -> Decision:
    report = seen.report or JobReport(ok=None)
    text = report.message or jobs.failure_message(job)
    where = f" in step {status['step']}" if status.get("step") else ""
    message = f"Job {status['job']} failed{where}: {last_line(text)}"
    failed = cond.Condition(TRAINED, "False", "TrainingFailed", message)
    return Decision(_with(status, generation, FAILED, failed, at=seen.now))


def _finish(status: Json, job: Json, seen: Observed) -> None:
    """The times and the last step of a Job that has ended (its report's step)."""
    job_status = job.get("status") or {}
    status.setdefault("startTime", job_status.get("startTime") or seen.now)
    ended_at = job_status.get("completionTime") or next(
        (c.get("lastTransitionTime") for c in job_status.get("conditions") or []
         if c.get("type") == "Failed" and c.get("lastTransitionTime")),
        None,
    )  # fmt: skip
    status["completionTime"] = ended_at or seen.now
    step = seen.report.step if seen.report else None
    if step in STEPS:
        status["step"] = step


# --- status helpers ------------------------------------------------------------------------------


def _with(
    status: Json,
    generation: int,
    phase: str,
    change: cond.Condition,
    *,
    ready: cond.Condition | None = None,
    at: str | None = None,
) -> Json:
    """`status` in `phase` with the `change`d Trained condition; Ready follows (False with
    its reason) unless given."""
    ready = ready or cond.Condition(READY, "False", change.reason, change.message)
    result = dict(status)
    result["phase"] = phase
    result["message"] = change.message
    result["conditions"] = cond.apply(
        status.get("conditions") or [], [change, ready], generation=generation, at=at
    )
    return result
