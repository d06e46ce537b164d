"""One EngineBuild, brought a step closer to built: observe the cluster, decide, act.

Level-based: every call reads the EngineBuild, its Jobs and the nodes afresh, so it may run
any number of times, from any handler (create/resume/update of the build, an event of one of
its Jobs, the resync timer), in any order. Jobs have deterministic names (a second create is
a 409); status is written with the resourceVersion read (a 409 if anything changed since,
and the step is redone on what is there now). The status is this code's alone: kopf keeps
its own state in annotations (run.py).

A generation (metadata.generation, bumped by spec changes) is built once: its first step
picks the Triton model version, later steps never change it, and Succeeded or Failed for it
is final until the spec changes again.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import kopf
from pydantic import ValidationError

from heron_operator import conditions as cond
from heron_operator import gpus, jobs
from heron_operator.job_report import JobReport
from heron_operator.kube import JOBS, NODES, PODS, ConflictError, NotFoundError, Resource
from heron_operator.metrics import job_durations
from heron_operator.settings import OperatorSettings
from heron_operator.spec import (
    BUILDING,
    BUILT,
    ENGINE_BUILDS,
    FAILED,
    GATED,
    GATING,
    PENDING,
    READY,
    SUCCEEDED,
    TERMINAL,
    EngineBuildSpec,
)
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

Json = dict[str, Any]
_FAILURES = {"NoSuchGPU", "GateFailed", "BuildFailed", "InvalidSpec", "MissingGateData",
             "TrainingRunFailed", "CalibrationCacheUnused"}  # fmt: skip
TRAINING_RUNS = Resource("heron.dev", "v1alpha1", "trainingruns", "TrainingRun")


@dataclass
class Decision:
    status: Json
    create: list[Json] = field(default_factory=list)  # Job manifests, not yet adopted
    events: list[Event] = field(default_factory=list)  # besides the status transitions


@dataclass(frozen=True)
class Observed:
    products: dict[str, gpus.GpuProduct]
    training_run: Json | None  # model.fromTrainingRun's, when it exists
    jobs: dict[str, Json]  # this generation's, by name
    reports: dict[str, JobReport]  # finished Jobs whose result status does not hold yet


async def reconcile(ctx: Context, namespace: str, name: str) -> None:
    """One step for the EngineBuild `namespace/name`; nothing when it is gone or going."""
    await fresh_step(ctx, ENGINE_BUILDS, namespace, name, lambda build: _step(ctx, build))


async def delete_jobs(ctx: Context, namespace: str, name: str) -> int:
    """Delete every Job of the build, of every generation (the finalizer's work)."""
    found = await ctx.kube.list(JOBS, namespace, labels=f"{jobs.BUILD_LABEL}={name}")
    for job in found:
        await ctx.kube.delete(JOBS, namespace, job["metadata"]["name"])
    return len(found)


async def _step(ctx: Context, build: Json) -> None:
    meta = build["metadata"]
    generation = int(meta.get("generation", 1))
    before: Json = build.get("status") or {}
    if before.get("observedGeneration") == generation and before.get("phase") in TERMINAL:
        return
    if before.get("observedGeneration") != generation:
        build = await _start_generation(ctx, build, generation)
    status: Json = build.get("status") or {}
    durations: tuple[float | None, float | None] = (None, None)
    try:
        spec = EngineBuildSpec.model_validate(build.get("spec") or {})
    except ValidationError as e:
        decision = _failed(status, generation, "InvalidSpec", validation_message(e))
    else:
        seen = await _observe(ctx, build, spec, generation)
        decision = decide(build, spec, seen, ctx.settings)
        durations = job_durations(seen.jobs)
    for manifest in decision.create:
        kopf.adopt(manifest, owner=body(build))
        try:
            await ctx.kube.create(JOBS, meta["namespace"], manifest)
        except ConflictError:
            continue  # created by an earlier step whose status write lost a race
        post(build, Event("Normal", "JobCreated", f"created Job {manifest['metadata']['name']}"))
    if decision.status != status:
        await write_status(
            ctx, ENGINE_BUILDS, build, decision.status
        )  # a 409 redoes the step: no events yet
    ctx.metrics.engine_build(meta["namespace"], {**build, "status": decision.status}, durations)
    for event in decision.events + transitions(before, decision.status, _FAILURES):
        post(build, event)


async def _start_generation(ctx: Context, build: Json, generation: int) -> Json:
    """A new generation: the old one's Jobs go, a version is picked, the status starts over."""
    meta, old = build["metadata"], build.get("status") or {}
    selector = f"{jobs.BUILD_LABEL}={meta['name']},{jobs.GENERATION_LABEL}!={generation}"
    for job in await ctx.kube.list(JOBS, meta["namespace"], labels=selector):
        await ctx.kube.delete(JOBS, meta["namespace"], job["metadata"]["name"])
    # Seconds since the epoch: later builds of a model get higher versions, which Triton's
    # `latest` policy serves, whoever else publishes into the repository.
    version = max(int(time.time()), int(old.get("version") or 0) + 1)
    status = {
        "observedGeneration": generation,
        "phase": PENDING,
        "version": version,
        "builds": [],
        "gate": None,
        "message": f"building version {version}",
        "conditions": cond.apply(
            old.get("conditions") or [],
            [cond.Condition(READY, "False", "Pending", f"building version {version}")],
            generation=generation,
        ),
    }
    return await write_status(ctx, ENGINE_BUILDS, build, status)


async def _observe(ctx: Context, build: Json, spec: EngineBuildSpec, generation: int) -> Observed:
    meta, status = build["metadata"], build.get("status") or {}
    ns = meta["namespace"]
    products = gpus.products(await ctx.kube.list(NODES))
    selector = f"{jobs.BUILD_LABEL}={meta['name']},{jobs.GENERATION_LABEL}={generation}"
    found = {j["metadata"]["name"]: j for j in await ctx.kube.list(JOBS, ns, labels=selector)}
    recorded = {b.get("job") for b in status.get("builds") or [] if b.get("phase") in TERMINAL}
    if (status.get("gate") or {}).get("passed") is not None:
        recorded.add(jobs.job_name(meta["name"], generation, "gate"))
    reports = {}
    for job_name, job in found.items():
        if job_name not in recorded and jobs.phase(job) in TERMINAL:
            reports[job_name] = await _read_report(ctx, ns, job)
    training_run = None
    if spec.model.from_training_run:
        with contextlib.suppress(NotFoundError):
            training_run = await ctx.kube.get(TRAINING_RUNS, ns, spec.model.from_training_run)
    return Observed(products, training_run, found, reports)


async def _read_report(ctx: Context, namespace: str, job: Json) -> JobReport:
    """The termination message of the pod that ended the Job (job_report.py wrote it): the
    succeeded one of a succeeded Job (earlier attempts may have failed), else the last."""
    name = job["metadata"]["name"]
    pods = await ctx.kube.list(PODS, namespace, labels=f"batch.kubernetes.io/job-name={name}")
    ended = jobs.phase(job)
    pods.sort(
        key=lambda p: ((p.get("status") or {}).get("phase") == ended,
                       p["metadata"].get("creationTimestamp") or ""),
        reverse=True,
    )  # fmt: skip
    for pod in pods:
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            message = ((container.get("state") or {}).get("terminated") or {}).get("message")
            if message:
                return JobReport.from_message(message)
    return JobReport(
        ok=None, message="" if jobs.phase(job) == SUCCEEDED else jobs.failure_message(job)
    )


# --- deciding --------------------------------------------------------------------------------


def decide(
    build: Json, spec: EngineBuildSpec, seen: Observed, settings: OperatorSettings
) -> Decision:
    """The status this step leads to and the Jobs it needs; no I/O."""
    status = build.get("status") or {}
    generation = int(build["metadata"].get("generation", 1))
    files = _model_files(build, spec, seen)
    if isinstance(files, Decision):  # waiting for, or refused by, the TrainingRun
        return files
    wanted = [gpus.label_value(p) for p in spec.gpu_products] or list(seen.products)
    missing = [p for p in wanted if p not in seen.products]
    if missing or not (wanted or spec.rtx.enabled or spec.onnx_runtime.enabled):
        have = ", ".join(seen.products) or "none"
        message = (
            f"no node has GPU product {', '.join(missing)}" if missing else "no GPU node"
        ) + f" ({gpus.PRODUCT_LABEL}); products on nodes: {have}"
        blocked = cond.Condition(BUILT, "False", "NoSuchGPU", message)
        return Decision(_with(status, generation, PENDING, blocked, ready_reason=blocked))

    step = _Step(build, spec, seen, settings, files)
    decision = Decision(dict(status))
    if spec.precision == "INT8":
        decision = _gate(step, decision) or _builds(step, decision, wanted)
    else:
        decision.status["conditions"] = cond.apply(
            status.get("conditions") or [],
            [cond.Condition(GATED, "True", "NotRequired", f"{spec.precision} plans are not gated")],
            generation=generation,
        )
        decision = _builds(step, decision, wanted)
    first_jobs = decision.create and not seen.jobs  # said once, with the first Jobs
    if spec.model.calibration_cache and spec.precision != "INT8" and first_jobs:
        decision.events.append(Event(
            "Warning", "CalibrationCacheUnused",
            f"model.calibrationCache is not used: {spec.precision} plans need no calibration",
        ))  # fmt: skip
    return decision


def _model_files(build: Json, spec: EngineBuildSpec, seen: Observed) -> jobs.ModelFiles | Decision:
    """Where the model is: `model.onnx`, or the artifacts of `model.fromTrainingRun` once it
    has succeeded (until then the build waits; the resync timer looks again)."""
    meta, status = build["metadata"], build.get("status") or {}
    name, generation = meta["name"], int(meta.get("generation", 1))
    if spec.model.onnx:
        return jobs.files_from_spec(spec, name, generation)
    run_name, run = spec.model.from_training_run, seen.training_run
    run_status = (run or {}).get("status") or {}
    phase = run_status.get("phase")
    if phase == FAILED:
        message = f"TrainingRun {run_name} failed: {run_status.get('message', '')}".rstrip(": ")
        return _failed(status, generation, "TrainingRunFailed", message)
    if run is None or phase != SUCCEEDED or not (run_status.get("artifacts") or {}).get("onnx"):
        message = (
            f"TrainingRun {run_name} does not exist (yet)" if run is None
            else f"TrainingRun {run_name} is {phase or 'Pending'}" if phase != SUCCEEDED
            else f"TrainingRun {run_name} has no status.artifacts.onnx"
        )  # fmt: skip
        waiting = cond.Condition(BUILT, "False", "WaitingForTrainingRun", message)
        return Decision(_with(status, generation, PENDING, waiting, ready_reason=waiting))
    return jobs.files_from_training_run(spec, run_status["artifacts"])


@dataclass(frozen=True)
class _Step:
    build: Json
    spec: EngineBuildSpec
    seen: Observed
    settings: OperatorSettings
    files: jobs.ModelFiles

    @property
    def name(self) -> str:
        return str(self.build["metadata"]["name"])

    @property
    def generation(self) -> int:
        return int(self.build["metadata"].get("generation", 1))

    @property
    def status(self) -> Json:
        return self.build.get("status") or {}

    def manifest(self, target: jobs.JobTarget, command: list[str]) -> Json:
        return jobs.manifest(
            name=target.name, role=target.role, product=target.product, command=command,
            build=self.build, spec=self.spec, files=self.files, settings=self.settings,
        )  # fmt: skip


def _gate(step: _Step, decision: Decision) -> Decision | None:
    """None when the gate passed (builds may start); else the decision to return.

    A TrainingRun scored its INT8 model when it calibrated it (`status.int8.apDrop`): that is
    the reading. An ONNX file is calibrated and scored by a gate Job (`heron calibrate`)."""
    status, generation, spec = decision.status, step.generation, step.spec
    if (status.get("gate") or {}).get("passed") is True:
        return None
    limit = spec.accuracy_gate.max_ap_drop
    if step.seen.training_run is not None:
        int8 = (step.seen.training_run.get("status") or {}).get("int8") or {}
        drop = int8.get("apDrop")
        where = f"TrainingRun {spec.model.from_training_run}"
        if drop is None:
            return _gate_verdict(step, decision, None, False, f"{where} has no INT8 accuracy")
        passed = float(drop) <= limit + 1e-9
        return _gate_verdict(
            step, decision, float(drop), passed, _drop_message(float(drop), limit, where)
        )
    # The CRD requires both for INT8 from an ONNX file (CEL); an API server that did not run
    # the rule still gets a reason rather than a gate Job that cannot start.
    images, eval_data = spec.accuracy_gate.calibration_images, spec.accuracy_gate.eval_data
    if images is None or eval_data is None:
        needed = [
            f"accuracyGate.{name}"
            for name, value in (("calibrationImages", images), ("evalData", eval_data))
            if value is None
        ]
        return _failed(
            status, generation, "MissingGateData",
            f"INT8 from model.onnx needs {' and '.join(needed)}: the calibration images and "
            "the KITTI folder the accuracy gate scores on (absolute paths on the model volume)",
            condition=GATED,
        )  # fmt: skip
    target = jobs.JobTarget("gate", "", jobs.job_name(step.name, generation, "gate"))
    job = step.seen.jobs.get(target.name)
    if job is None or jobs.phase(job) not in TERMINAL:
        if job is None:
            command = jobs.gate_command(spec, step.files, images=images, eval_data=eval_data)
            decision.create.append(step.manifest(target, command))
        running = cond.Condition(
            GATED, "Unknown", "GateRunning", f"calibrating and scoring INT8 (Job {target.name})"
        )
        decision.status = _with(status, generation, GATING, running, ready_reason=running)
        return decision
    report = step.seen.reports.get(target.name) or JobReport(ok=None)
    drop = report.ap_drop
    if drop is None:
        why = report.message or jobs.failure_message(job)
        return _gate_verdict(
            step, decision, None, False, f"the gate Job {target.name} gave no AP numbers: {why}"
        )
    succeeded = jobs.phase(job) == SUCCEEDED and report.passed is True
    passed = succeeded and drop <= limit + 1e-9
    return _gate_verdict(step, decision, drop, passed, _drop_message(drop, limit, "INT8"))


def _drop_message(drop: float, limit: float, what: str) -> str:
    verdict = "more than" if drop > limit + 1e-9 else "at most"
    return f"{what} loses {drop * 100:.2f} mAP points, {verdict} maxApDrop {limit * 100:.2f}"


def _gate_verdict(
    step: _Step, decision: Decision, drop: float | None, passed: bool, message: str
) -> Decision | None:
    gate = {"apDrop": drop, "passed": passed, "message": message}
    if not passed:
        failed = _failed(decision.status, step.generation, "GateFailed", message, condition=GATED)
        failed.status["gate"] = gate
        return failed
    decision.status["gate"] = gate
    decision.status["conditions"] = cond.apply(
        decision.status.get("conditions") or [],
        [cond.Condition(GATED, "True", "GatePassed", message)],
        generation=step.generation,
    )
    return None


def _builds(step: _Step, decision: Decision, wanted: list[str]) -> Decision:
    status, generation, spec = decision.status, step.generation, step.spec
    version = int(status["version"])
    rtx_targets = gpus.rtx_targets(step.seen.products[p] for p in wanted)
    before = {b["product"]: b for b in status.get("builds") or []}
    entries = []
    for target in jobs.targets(
        step.name, generation, wanted, rtx=spec.rtx.enabled, onnx=spec.onnx_runtime.enabled
    ):
        entry = dict(before.get(target.product) or {
            "product": target.product, "job": target.name, "phase": PENDING, "version": version,
        })  # fmt: skip
        job = step.seen.jobs.get(target.name)
        if entry["phase"] in TERMINAL:
            pass
        elif job is None:
            command = jobs.build_command(
                spec, step.files, version=version, target=target, rtx_targets=rtx_targets
            )
            decision.create.append(step.manifest(target, command))
        else:
            entry.update(_entry_from_job(spec, job, step.seen.reports.get(target.name)))
        entries.append(entry)
        if entry["phase"] != (before.get(target.product) or {}).get("phase", PENDING):
            decision.events.append(Event(
                "Warning" if entry["phase"] == FAILED else "Normal", f"Build{entry['phase']}",
                f"{target.product}: {entry.get('message') or entry['job']}",
            ))  # fmt: skip
    decision.status["builds"] = entries
    failed = [e for e in entries if e["phase"] == FAILED]
    done = [e for e in entries if e["phase"] == SUCCEEDED]
    if failed:
        message = "; ".join(
            f"plan build failed for {e['product']}: {e.get('message', '')}" for e in failed
        )
        result = _failed(decision.status, generation, "BuildFailed", message)
        result.events, result.create = decision.events, decision.create
        return result
    if len(done) == len(entries):
        models = [spec.model_name] if wanted else []
        models += [spec.model_name + jobs.RTX_MODEL_SUFFIX] if spec.rtx.enabled else []
        models += [spec.model_name + jobs.ONNX_MODEL_SUFFIX] if spec.onnx_runtime.enabled else []
        message = f"{len(done)} plans built: version {version} of {' and '.join(models)}"
        built = cond.Condition(BUILT, "True", "Built", message)
        ready = cond.Condition(READY, "True", "Built", message)
        decision.status = _with(decision.status, generation, SUCCEEDED, built, ready=ready)
        return decision
    building = cond.Condition(
        BUILT, "Unknown", "Building", f"{len(done)}/{len(entries)} plans built"
    )
    decision.status = _with(decision.status, generation, BUILDING, building, ready_reason=building)
    return decision


def _entry_from_job(spec: EngineBuildSpec, job: Json, report: JobReport | None) -> Json:
    phase = jobs.phase(job)
    if phase == SUCCEEDED:
        plan = report.plan if report else None
        return {"phase": phase, "message": "built"} | (
            {"plan": jobs.relative_to_repository(spec, plan)} if plan else {}
        )
    if phase == FAILED:
        text = report.message if report and report.message else jobs.failure_message(job)
        return {"phase": phase, "message": last_line(text)}
    return {"phase": phase}


# --- status helpers --------------------------------------------------------------------------


def _with(
    status: Json,
    generation: int,
    phase: str,
    change: cond.Condition,
    *,
    ready: cond.Condition | None = None,
    ready_reason: cond.Condition | None = None,
) -> Json:
    """`status` in `phase` with the `change`d condition; Ready follows (False, with the reason
    of what holds it) unless given."""
    if ready is None:
        blocker = ready_reason or change
        ready = cond.Condition(READY, "False", blocker.reason, blocker.message)
    result = dict(status)
    result["phase"] = phase
    result["message"] = ready.message if ready.status == "True" else change.message
    result["conditions"] = cond.apply(
        status.get("conditions") or [], [change, ready], generation=generation
    )
    return result


def _failed(
    status: Json, generation: int, reason: str, message: str, *, condition: str = BUILT
) -> Decision:
    change = cond.Condition(condition, "False", reason, message)
    return Decision(_with(status, generation, FAILED, change))
