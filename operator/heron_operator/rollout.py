"""One EngineRollout, brought a step further through its states (docs/operator.md, "The rollout").

    Pending → Loading → Canary → Promoting → Promoted
                 ↘         ↘          ↘
                  RollingBack → RolledBack (or Failed when the version never loaded)

Every step reads the rollout and acts on its phase; what it changes in the pipelines it first
writes down in the status. Pending records each selected pipeline's routing as it is (the
*stable* routing) and picks the canary streams before any stream moves; every later phase sets
a routing that follows from that record alone, through the pipeline's SetModelVersions (which
loads the version on every inference instance before a stream switches, and is idempotent).
So a step may run again, after a crash or on another replica, and set the same routing again.
A rollout that breaks a gate, is aborted, cannot load or promote, or is deleted while streams
may run the canary puts every stream back on its stable routing; only then does it end.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import kopf
from pydantic import ValidationError

from heron_operator import conditions as cond
from heron_operator import gates as g
from heron_operator.kube import NotFoundError
from heron_operator.pipelines import (
    SERVICES,
    PipelineApi,
    PipelineCallError,
    PipelineRef,
    Routing,
    client_settings,
    pipeline_ref,
    selector_with_api,
)
from heron_operator.rollout_spec import (
    CANARY,
    CANARY_HEALTHY,
    ENGINE_ROLLOUTS,
    FAILED,
    LOADING,
    PENDING,
    PROMOTED,
    PROMOTING,
    READY,
    ROLLED_BACK,
    ROLLING_BACK,
    ROUTED,
    TERMINAL,
    EngineRolloutSpec,
)
from heron_operator.spec import ENGINE_BUILDS
from heron_operator.steps import (
    Context,
    Event,
    fresh_step,
    post,
    transitions,
    validation_message,
    write_status,
)

log = logging.getLogger(__name__)
Json = dict[str, Any]
# Rollback reasons after which the rollout ends Failed rather than RolledBack: the version
# never served a canary stream.
_NEVER_RAN = {"LoadFailed"}
_WARNINGS = {"GateFailed", "Aborted", "LoadFailed", "PromoteFailed", "RollbackFailed",
             "GatesNotMeasured", "EngineBuildFailed", "InvalidSpec", "PipelineRefused"}  # fmt: skip


# --- the record of each pipeline -----------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One selected pipeline: where it answers, its streams, which run the canary, and its
    routing before the rollout (status.targets[])."""

    ref: PipelineRef
    streams: list[str]
    canary_streams: list[str]
    stable: Routing

    def to_status(self) -> Json:
        return {
            "pipeline": self.ref.name,
            "service": self.ref.service,
            "address": self.ref.address,
            "streams": self.streams,
            "canaryStreams": self.canary_streams,
            "stable": {
                "defaultVersion": self.stable.default_version,
                "streamVersions": dict(self.stable.stream_versions),
                "configVersion": self.stable.config_version,
            },
        }

    @classmethod
    def from_status(cls, item: Json) -> Target:
        stable = item.get("stable") or {}
        return cls(
            PipelineRef(item["pipeline"], item["service"], item["address"]),
            list(item.get("streams") or []),
            list(item.get("canaryStreams") or []),
            Routing(
                str(stable.get("defaultVersion") or ""),
                dict(stable.get("streamVersions") or {}),
                str(stable.get("configVersion") or ""),
            ),
        )

    def canary(self, version: str) -> Routing:
        """The stable routing with the canary streams on `version`."""
        streams = {**self.stable.stream_versions, **dict.fromkeys(self.canary_streams, version)}
        return replace(self.stable, stream_versions=streams)

    def promoted(self, version: str) -> Routing:
        """Every stream on `version`, but those the stable routing pinned to their own."""
        pinned = {s: v for s, v in self.stable.stream_versions.items() if s not in self.streams}
        return replace(self.stable, default_version=version, stream_versions=pinned)


def pick_canaries(found: list[tuple[PipelineRef, list[str], Routing]], count: int) -> list[Target]:
    """`count` canary streams, taken in turn from each pipeline (so a canary of several pipelines
    spreads over them), in stream order within each; streams pinned to a version of their own
    are never picked."""
    free = [
        [s for s in streams if s not in routing.stream_versions] for _, streams, routing in found
    ]
    chosen: list[list[str]] = [[] for _ in found]
    while count > 0 and any(free):
        for i, streams in enumerate(free):
            if streams and count > 0:
                chosen[i].append(streams.pop(0))
                count -= 1
    return [
        Target(ref, [s for s in streams if s not in routing.stream_versions], chosen[i], routing)
        for i, (ref, streams, routing) in enumerate(found)
    ]


# --- one step ------------------------------------------------------------------------------


@dataclass
class Step:
    """What one step works on and what it has decided so far."""

    ctx: Context
    rollout: Json
    checked: EngineRolloutSpec | None  # None: a spec the CRD would refuse (only rolls back)
    status: Json
    events: list[Event] = field(default_factory=list)

    @property
    def spec(self) -> EngineRolloutSpec:
        if self.checked is None:  # only _invalid and restore() step without one
            raise kopf.PermanentError("this phase needs a valid spec")
        return self.checked

    @property
    def namespace(self) -> str:
        return str(self.rollout["metadata"]["namespace"])

    @property
    def generation(self) -> int:
        return int(self.rollout["metadata"].get("generation", 1))

    @property
    def who(self) -> str:
        return f"EngineRollout {self.namespace}/{self.rollout['metadata']['name']}"

    @property
    def targets(self) -> list[Target]:
        return [Target.from_status(t) for t in self.status.get("targets") or []]

    @property
    def version(self) -> str:
        return str(self.status.get("canaryVersion") or "")

    def phase_age_s(self) -> float:
        return _age_s(self.status.get("phaseTime"))

    def move(self, phase: str, reason: str, message: str, *, ready: bool = False) -> None:
        """Into `phase`; Ready says why (True only once promoted)."""
        if phase != self.status.get("phase"):
            self.status["phaseTime"] = cond.now()
        self.status["phase"] = phase
        self.status["message"] = message
        self.status["observedGeneration"] = self.generation
        self.set_condition(cond.Condition(READY, "True" if ready else "False", reason, message))

    def set_condition(self, change: cond.Condition) -> None:
        self.status["conditions"] = cond.apply(
            self.status.get("conditions") or [], [change], generation=self.generation
        )

    def roll_back(self, reason: str, message: str) -> None:
        self.status["rollbackReason"] = reason
        self.move(ROLLING_BACK, reason, f"rolling back: {message}")


Handler = Callable[[Step], Awaitable[None]]


async def reconcile(ctx: Context, namespace: str, name: str) -> None:
    """One step for the EngineRollout `namespace/name`; nothing when it is gone or going."""
    await fresh_step(ctx, ENGINE_ROLLOUTS, namespace, name, lambda rollout: _step(ctx, rollout))


async def _step(ctx: Context, rollout: Json) -> None:
    before: Json = rollout.get("status") or {}
    if before.get("phase") in TERMINAL:
        return
    status = dict(before) or {"phase": PENDING}
    try:
        spec = EngineRolloutSpec.model_validate(rollout.get("spec") or {})
    except ValidationError as e:
        await _invalid(ctx, rollout, status, validation_message(e))
        return
    step = Step(ctx, rollout, spec, status)
    # A phase that hands over to another (a gate broke: roll back) goes on in the same step,
    # once the new phase is written down: a crash in between resumes there.
    for _ in range(4):
        phase = step.status.get("phase", PENDING)
        await _HANDLERS[phase](step)
        rollout = await _write(ctx, rollout, before, step)
        before = rollout.get("status") or {}
        if step.status.get("phase") == phase or step.status.get("phase") in TERMINAL:
            return


async def _invalid(ctx: Context, rollout: Json, status: Json, message: str) -> None:
    """A spec the CRD would refuse: nothing moves; if streams may run the canary, roll back."""
    step = Step(ctx, rollout, None, status)
    if status.get("phase") in ROUTED and status.get("targets"):
        step.roll_back("InvalidSpec", message)
        await _rolling_back(step)
    else:
        step.move(FAILED, "InvalidSpec", message)
    await _write(ctx, rollout, rollout.get("status") or {}, step)


async def _write(ctx: Context, rollout: Json, before: Json, step: Step) -> Json:
    """Write the status if it changed; post the events it leads to."""
    meta = rollout["metadata"]
    if step.status != before:
        rollout = await write_status(ctx, ENGINE_ROLLOUTS, rollout, step.status)
    for event in step.events + transitions(before, step.status, _WARNINGS):
        post(rollout, event)
    step.events = []
    ctx.metrics.rollout(meta["namespace"], meta["name"], step.status)
    return rollout


# --- the phases ----------------------------------------------------------------------------


async def _pending(step: Step) -> None:
    """Wait for the build; record the pipelines' routing and pick the canary streams."""
    build = await _engine_build(step)
    if build is None:
        return
    version = str(build["status"]["version"])
    ap_drop = (build["status"].get("gate") or {}).get("apDrop")
    step.status["canaryVersion"] = version
    if ap_drop is not None and not _ap_gate(step, float(ap_drop)):
        return
    found = await _selected(step, version)
    if found is None:
        return
    if not found:
        step.move(PROMOTED, "AlreadyServing", f"every selected pipeline already runs {version}",
                  ready=True)  # fmt: skip
        return
    total = sum(len([s for s in streams if s not in r.stream_versions]) for _, streams, r in found)
    if total == 0:
        step.move(PENDING, "NoStreams", "the selected pipelines have no streams to run a canary")
        return
    targets = pick_canaries(found, step.spec.canary.streams.of(total))
    step.status.update(_plan(targets, total))
    picked = "; ".join(f"{t.ref.name}: {', '.join(t.canary_streams)}" for t in targets
                       if t.canary_streams)  # fmt: skip
    step.events.append(Event("Normal", "Planned", f"version {version} first on {picked}"))
    step.move(LOADING, "Loading", f"loading version {version} on {len(targets)} pipeline(s)")


async def _engine_build(step: Step) -> Json | None:
    """The EngineBuild once it has succeeded; None (waiting, or failed) before."""
    name = step.spec.engine_build
    try:
        build = await step.ctx.kube.get(ENGINE_BUILDS, step.namespace, name)
    except NotFoundError:
        step.move(PENDING, "WaitingForEngineBuild", f"EngineBuild {name} does not exist (yet)")
        return None
    status = build.get("status") or {}
    phase = status.get("phase")
    if phase == FAILED:
        step.move(
            FAILED, "EngineBuildFailed", f"EngineBuild {name} failed: {status.get('message', '')}"
        )
        return None
    if phase != "Succeeded" or not status.get("version"):
        step.move(PENDING, "WaitingForEngineBuild", f"EngineBuild {name} is {phase or 'Pending'}")
        return None
    return build


def _ap_gate(step: Step, drop: float) -> bool:
    """The build's AP drop against maxApDrop, before anything is loaded."""
    limit = step.spec.gates.max_ap_drop
    if drop <= limit + 1e-9:
        return True
    message = (
        f"the EngineBuild loses {drop * 100:.2f} mAP points, more than maxApDrop "
        f"{limit * 100:.2f}: nothing was loaded"
    )
    step.status["gates"] = _gates_status(g.Readings(ap_drop=drop), False, message, ["apDrop"])
    step.move(FAILED, "GateFailed", message)
    return False


async def _selected(
    step: Step, version: str
) -> list[tuple[PipelineRef, list[str], Routing]] | None:
    """Each selected pipeline with its streams and routing, leaving out those that already run
    `version`; None (and the status says why) when they cannot be asked now."""
    selector = selector_with_api(step.spec.selector.query())
    services = await step.ctx.kube.list(SERVICES, step.namespace, labels=selector)
    refs = sorted((r for r in map(pipeline_ref, services) if r is not None), key=lambda r: r.name)
    if not refs:
        step.move(PENDING, "NoPipelines",
                  f"no pipeline's control Service matches the selector ({selector})")  # fmt: skip
        return None
    found = []
    for ref in refs:
        api = _api(step, ref)
        try:
            routing, streams = await api.routing(), await api.streams()
        except PipelineCallError as e:
            if e.retryable:
                step.move(PENDING, "PipelineUnavailable", str(e))
            else:
                step.move(FAILED, "PipelineRefused", str(e))
            return None
        if routing.serving == version and not routing.stream_versions:
            step.events.append(
                Event("Normal", "AlreadyServing", f"{ref.name} already runs {version}")
            )
            continue
        found.append((ref, streams, routing))
    return found


def _api(step: Step, ref: PipelineRef) -> PipelineApi:
    return PipelineApi(ref, client_settings(ref, step.namespace, step.ctx.settings))


def _plan(targets: list[Target], total: int) -> Json:
    stable = sorted({t.stable.serving for t in targets})
    return {
        "targets": [t.to_status() for t in targets],
        "pipelines": [t.ref.name for t in targets],
        "stableVersion": ",".join(stable),
        "canaryStreams": sum(len(t.canary_streams) for t in targets),
        "totalStreams": total,
    }


async def _loading(step: Step) -> None:
    """Route the canary streams of every pipeline to the version (each loads it first)."""
    version = step.version
    if step.spec.action == "Abort":
        step.roll_back("Aborted", "action Abort")
        return
    failure = await _route_all(step, lambda t: t.canary(version))
    if failure is not None:
        retryable, message = failure
        if not retryable:
            step.roll_back("LoadFailed", message)
        elif step.phase_age_s() > step.ctx.settings.pipeline_answer_timeout_s:
            step.roll_back("LoadFailed", f"no answer for {step.phase_age_s():.0f} s: {message}")
        else:
            step.move(LOADING, "Loading", f"loading version {version}: {message}; trying again")
        return
    step.status["canaryStartTime"] = cond.now()
    n, total = step.status.get("canaryStreams"), step.status.get("totalStreams")
    step.events.append(
        Event("Normal", "CanaryStarted", f"version {version} runs {n} of {total} streams")
    )
    step.move(
        CANARY, "Soaking", f"version {version} on {n} of {total} streams for {step.spec.soak}"
    )


async def _canary(step: Step) -> None:
    """Read the gates; roll back on a broken one; promote when the soak is over."""
    if step.spec.action == "Abort":
        step.roll_back("Aborted", "action Abort")
        return
    if step.spec.action == "Promote":
        step.move(PROMOTING, "Promoting", "action Promote: promoting before the soak ends")
        return
    elapsed = _age_s(step.status.get("canaryStartTime"))
    readings, problem = await _read_gates(step, elapsed)
    ap_gated = readings.ap_drop is not None
    over = elapsed >= step.spec.soak_s
    verdict = g.judge(readings, step.spec.gates, ap_gated=ap_gated, final=over)
    message = verdict.message(readings) + (f" ({problem})" if problem else "")
    step.status["gates"] = _gates_status(readings, verdict.healthy, message, verdict.broken_gates)
    step.set_condition(_health(verdict, message))
    if verdict.broken:
        step.roll_back("GateFailed", message)
    elif over:
        if verdict.complete:
            step.move(
                PROMOTING, "Promoting", f"the soak of {step.spec.soak} is over and every gate held"
            )
        else:
            step.roll_back("GatesNotMeasured", f"the soak is over but {message}")
    else:
        left = step.spec.soak_s - elapsed
        step.move(CANARY, "Soaking", f"soaking, {left:.0f} s left; {message}")


def _health(verdict: g.Verdict, message: str) -> cond.Condition:
    if verdict.broken:
        return cond.Condition(CANARY_HEALTHY, "False", "GateBroken", message)
    if verdict.unmeasured:
        return cond.Condition(CANARY_HEALTHY, "Unknown", "NotMeasured", message)
    return cond.Condition(CANARY_HEALTHY, "True", "GatesHeld", message)


async def _promoting(step: Step) -> None:
    version = step.version
    failure = await _route_all(step, lambda t: t.promoted(version))
    if failure is None:
        step.move(PROMOTED, "Promoted", f"every stream runs version {version}", ready=True)
        return
    retryable, message = failure
    if retryable and step.phase_age_s() <= step.ctx.settings.pipeline_answer_timeout_s:
        step.move(PROMOTING, "Promoting", f"promoting: {message}; trying again")
    else:
        step.roll_back("PromoteFailed", message)


async def _rolling_back(step: Step) -> None:
    failure = await _route_all(step, lambda t: t.stable)
    reason = str(step.status.get("rollbackReason") or "RolledBack")
    if failure is None:
        stable = step.status.get("stableVersion", "")
        done = f"every stream runs the stable version {stable} again ({reason})"
        step.move(FAILED if reason in _NEVER_RAN else ROLLED_BACK, reason, done)
        return
    retryable, message = failure
    if retryable and step.phase_age_s() <= step.ctx.settings.pipeline_answer_timeout_s:
        step.move(ROLLING_BACK, reason, f"rolling back: {message}; trying again")
    else:
        step.move(FAILED, "RollbackFailed", f"a stream cannot switch back: {message}")


_HANDLERS: dict[str, Handler] = {
    PENDING: _pending,
    LOADING: _loading,
    CANARY: _canary,
    PROMOTING: _promoting,
    ROLLING_BACK: _rolling_back,
}


async def _route_all(step: Step, routing: Callable[[Target], Routing]) -> tuple[bool, str] | None:
    """Set each target's routing; None when all took it, else (retryable, what failed). Every
    target is tried, so one pipeline that is away does not hold the others back."""
    failures: list[PipelineCallError] = []
    for target in step.targets:
        api = _api(step, target.ref)
        try:
            await api.route(routing(target), step.who)
        except PipelineCallError as e:
            failures.append(e)
    if not failures:
        return None
    return all(f.retryable for f in failures), "; ".join(map(str, failures))


async def restore(ctx: Context, namespace: str, name: str) -> int:
    """Every stream back on its stable routing (a rollout deleted mid-way); how many pipelines
    were restored. A pipeline that is away raises kopf.TemporaryError: the finalizer waits."""
    try:
        rollout = await ctx.kube.get(ENGINE_ROLLOUTS, namespace, name)
    except NotFoundError:
        return 0
    status = rollout.get("status") or {}
    if status.get("phase") not in ROUTED:
        return 0
    step = Step(ctx, rollout, None, dict(status))
    failure = await _route_all(step, lambda t: t.stable)
    if failure is not None:
        retryable, message = failure
        if retryable:
            raise kopf.TemporaryError(f"restoring the stable routing: {message}", delay=10)
        log.warning("%s: could not restore every pipeline: %s", step.who, message)
    return len(step.targets)


# --- gates ---------------------------------------------------------------------------------


_SHORTEST_WINDOW_S = 10.0  # fewer seconds hold too few scrapes for increase() to mean much


async def _read_gates(step: Step, elapsed_s: float) -> tuple[g.Readings, str]:
    """The readings now, and why some are missing ("" when nothing is amiss).

    The window starts `gate_min_window_s` after the switch at the earliest: by then the canary's
    series exist in Prometheus, so no count is lost to a series starting inside the window, and
    the frames in flight at the switch are through."""
    settings = step.ctx.settings
    build_gate = await _build_ap_drop(step)
    if not settings.prometheus_url:
        return g.Readings(ap_drop=build_gate), "no Prometheus: set HERON_OPERATOR_PROMETHEUS_URL"
    window = min(elapsed_s - settings.gate_min_window_s, settings.gate_window_s)
    if window < _SHORTEST_WINDOW_S:
        settle = settings.gate_min_window_s + _SHORTEST_WINDOW_S
        return g.Readings(ap_drop=build_gate), f"the canary is judged from {settle:g} s on"
    try:
        readings = await _counted(step, elapsed_s, window, build_gate)
    except g.PrometheusError as e:
        return g.Readings(ap_drop=build_gate), str(e)
    return readings, ""


async def _counted(
    step: Step, elapsed_s: float, window: float, build_gate: float | None
) -> g.Readings:
    """The counts of every pipeline of the rollout, summed, turned into readings."""
    settings = step.ctx.settings
    prometheus = g.Prometheus(settings.prometheus_url or "")
    labels = g.Labels(settings.prometheus_namespace_label, settings.prometheus_pipeline_label)
    canary, stable = g.Counts(), g.Counts()
    canary_before, stable_before = g.Counts(), g.Counts()  # the window before the switch
    start = time.time() - elapsed_s
    for t in step.targets:
        scope = g.Scope(step.namespace, t.ref.name, t.canary_streams,
                        [s for s in t.streams if s not in t.canary_streams],
                        step.version, t.stable.serving)  # fmt: skip
        count = functools.partial(g.counts, prometheus, labels, scope, window_s=window)
        stable_streams, was = list(scope.stable_streams), scope.stable_version
        canary.add(await count(streams=t.canary_streams, version=step.version))
        stable.add(await count(streams=stable_streams, version=was))
        canary_before.add(await count(streams=t.canary_streams, version=was, at=start))
        stable_before.add(await count(streams=stable_streams, version=was, at=start))
    fps_base = stable if stable.sources > 0 else None
    rate_base = g.baseline(canary_before, stable, stable_before)
    return g.readings(canary, fps_base, rate_base, build_gate)


async def _build_ap_drop(step: Step) -> float | None:
    try:
        build = await step.ctx.kube.get(ENGINE_BUILDS, step.namespace, step.spec.engine_build)
    except NotFoundError:
        return None
    drop = ((build.get("status") or {}).get("gate") or {}).get("apDrop")
    return None if drop is None else float(drop)


def _gates_status(
    readings: g.Readings, passed: bool, message: str, broken: list[str] | None = None
) -> Json:
    return {
        "broken": broken or [],
        "apDrop": readings.ap_drop,
        "fpsRatio": readings.fps_ratio,
        "errorRate": readings.error_rate,
        "detectionRateDrift": readings.detection_rate_drift,
        "passed": passed,
        "message": message,
        "time": cond.now(),
    }


# --- helpers -------------------------------------------------------------------------------


def _age_s(stamp: Any) -> float:
    then = cond.parse_time(stamp)
    return 0.0 if then is None else max(0.0, time.time() - then)
