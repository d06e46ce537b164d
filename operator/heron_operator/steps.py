"""What the three controllers' level-based steps share (reconcile.py: EngineBuild,
training_reconcile.py: TrainingRun, rollout.py: EngineRollout).

A step reads its object afresh, decides, acts and writes the status as a merge patch carrying
the resourceVersion it read: a step that raced another gets a 409 and is done again on what is
there now (`fresh_step`). The status is the controller's alone (kopf keeps its own state in
annotations, run.py); events say what moved.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Literal

import kopf
from pydantic import ValidationError

from heron_operator import conditions as cond
from heron_operator.kube import ConflictError, Kube, NotFoundError, Resource
from heron_operator.metrics import OperatorMetrics
from heron_operator.settings import OperatorSettings

Json = dict[str, Any]
_ATTEMPTS = 5  # re-reads after a 409 before kopf's retry takes over
READY = "Ready"


@dataclass
class Context:
    """What every handler of one operator shares (kopf's memo)."""

    kube: Kube
    settings: OperatorSettings
    locks: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict)
    metrics: OperatorMetrics = field(default_factory=OperatorMetrics)


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


async def fresh_step(
    ctx: Context,
    resource: Resource,
    namespace: str,
    name: str,
    step: Callable[[Json], Awaitable[None]],
) -> None:
    """`step` on the object as it is now, one at a time per object; nothing when it is gone or
    being deleted; again after a 409 (it changed since it was read)."""
    lock = ctx.locks.setdefault((namespace, f"{resource.plural}/{name}"), asyncio.Lock())
    async with lock:
        for _ in range(_ATTEMPTS):
            try:
                obj = await ctx.kube.get(resource, namespace, name)
            except NotFoundError:
                return
            if obj["metadata"].get("deletionTimestamp"):
                return
            try:
                await step(obj)
                return
            except ConflictError:
                continue  # changed since read: redo the step on what is there now
        raise kopf.TemporaryError(f"{namespace}/{name} kept changing; retrying", delay=1)


async def write_status(ctx: Context, resource: Resource, obj: Json, status: Json) -> Json:
    """`status` written over the object's, if nothing changed since it was read (else 409)."""
    meta = obj["metadata"]
    patch = {
        "metadata": {"resourceVersion": meta["resourceVersion"]},
        "status": merge_patch(obj.get("status") or {}, status),
    }
    return await ctx.kube.patch(
        resource, meta["namespace"], meta["name"], patch, subresource="status"
    )


def merge_patch(old: Json, new: Json) -> Json:
    """The JSON merge patch that turns `old` into `new` (removed keys become null)."""
    patch: Json = {key: None for key in old if key not in new}
    for key, value in new.items():
        both = isinstance(value, dict) and isinstance(old.get(key), dict)
        patch[key] = merge_patch(old[key], value) if both else value
    return patch


def transitions(before: Json, after: Json, warnings: Collection[str]) -> list[Event]:
    """An event per condition that moved, a Warning when it went False for one of `warnings`;
    Ready not when it repeats another condition's reason (one event says it)."""
    moved = cond.transitions(before.get("conditions") or [], after.get("conditions") or [])
    others = {c.get("reason") for c in moved if c.get("type") != READY}
    events = []
    for c in moved:
        if c.get("type") == READY and c.get("reason") in others:
            continue
        warning = c.get("status") == "False" and c.get("reason") in warnings
        text = f"{c['type']}={c['status']}: {c.get('message', '')}"
        events.append(Event("Warning" if warning else "Normal", str(c.get("reason")), text))
    return events


def post(obj: Json, event: Event) -> None:
    kopf.event(body(obj), type=event.type, reason=event.reason, message=event.message)


def body(raw: Json) -> kopf.Body:
    """A raw object as kopf's functions take it (they read it as a mapping)."""
    return kopf.Body(raw)  # type: ignore[arg-type]


def validation_message(error: ValidationError) -> str:
    """A spec the checked model refuses, field by field (`spec.soak: ...`)."""
    return "; ".join(
        f"spec.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
    )


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else text
