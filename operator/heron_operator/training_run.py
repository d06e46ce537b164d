"""The TrainingRun controller's kopf handlers: each one a line or two over training_reconcile.py.

- create / resume / spec update of a TrainingRun, and a timer while it is unfinished: one
  reconcile step (the timer reads the running step from the pod's log and catches Job events
  missed while the operator was away);
- any event of a Job labelled `heron.dev/training-run`: a step for the TrainingRun owning it;
- deletion: its Jobs are deleted (kopf's finalizer holds the TrainingRun until then).
"""

from __future__ import annotations

from typing import Any

import kopf

from heron_operator.handlers import context, counted, namespaced
from heron_operator.settings import OperatorSettings
from heron_operator.training_jobs import RUN_LABEL
from heron_operator.training_reconcile import delete_jobs, reconcile
from heron_operator.training_spec import TERMINAL, TRAINING_RUNS

_RUNS = (TRAINING_RUNS.group, TRAINING_RUNS.version, TRAINING_RUNS.plural)


@counted("TrainingRun")
async def step(*, namespace: str | None, name: str, memo: Any, **_: Any) -> None:
    await reconcile(context(memo), namespaced(namespace), name)


def owner(meta: kopf.Meta) -> str | None:
    """The TrainingRun owning a Job: its owner reference (the label may be a cut name)."""
    for ref in meta.get("ownerReferences") or []:
        if ref.get("kind") == TRAINING_RUNS.kind and ref.get("apiVersion", "").startswith(
            f"{TRAINING_RUNS.group}/"
        ):
            return str(ref["name"])
    return None


@counted("TrainingRun")
async def job_changed(*, namespace: str | None, meta: kopf.Meta, memo: Any, **_: Any) -> None:
    name = owner(meta)
    if name is not None:
        await reconcile(context(memo), namespaced(namespace), name)


@counted("TrainingRun")
async def deleted(
    *, namespace: str | None, name: str, body: kopf.Body, memo: Any, **_: Any
) -> None:
    count = await delete_jobs(context(memo), namespaced(namespace), name)
    kopf.event(body, type="Normal", reason="JobsDeleted", message=f"deleted {count} Job(s)")


def unfinished(*, status: kopf.Status, **_: Any) -> bool:
    return status.get("phase") not in TERMINAL or status.get("observedGeneration") is None


def register(registry: kopf.OperatorRegistry, settings: OperatorSettings) -> None:
    """Register the handlers on `registry`, with the settings' timings."""
    backoff = settings.retry_s
    kopf.on.create(*_RUNS, id="reconcile-created", backoff=backoff, registry=registry)(step)
    kopf.on.resume(*_RUNS, id="reconcile-resumed", backoff=backoff, registry=registry)(step)
    kopf.on.update(
        *_RUNS, id="reconcile-updated", field="spec", backoff=backoff, registry=registry
    )(step)
    kopf.on.delete(*_RUNS, id="delete-jobs", backoff=backoff, registry=registry)(deleted)
    # No `idle`: a running training is looked at every resync_s for the step its log names.
    resync = kopf.timer(
        *_RUNS, id="resync", interval=settings.resync_s, when=unfinished, registry=registry
    )
    resync(step)
    kopf.on.event(
        "batch", "v1", "jobs", id="training-job-changed", labels={RUN_LABEL: kopf.PRESENT},
        registry=registry,
    )(job_changed)  # fmt: skip
