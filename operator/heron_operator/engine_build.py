"""The EngineBuild controller's kopf handlers: each one a line or two over reconcile.py.

- create / resume / spec update of an EngineBuild, and a timer while it is unfinished:
  one reconcile step (the timer catches nodes that join and Job events missed while the
  operator was away);
- any event of a Job labelled with a build's name: a step for that build;
- deletion: its Jobs are deleted (kopf's finalizer holds the build until then).
"""

from __future__ import annotations

from typing import Any

import kopf

from heron_operator.jobs import BUILD_LABEL
from heron_operator.reconcile import Context, delete_jobs, reconcile
from heron_operator.settings import OperatorSettings
from heron_operator.spec import ENGINE_BUILDS, TERMINAL

_BUILDS = (ENGINE_BUILDS.group, ENGINE_BUILDS.version, ENGINE_BUILDS.plural)


def _context(memo: Any) -> Context:
    if not isinstance(memo, Context):  # run.py hands kopf a Context as the memo
        raise kopf.PermanentError(f"expected the operator's Context as memo, got {memo!r}")
    return memo


def _namespace(namespace: str | None) -> str:
    if namespace is None:  # EngineBuilds and Jobs are namespaced
        raise kopf.PermanentError("expected a namespaced object")
    return namespace


async def step(*, namespace: str | None, name: str, memo: Any, **_: Any) -> None:
    await reconcile(_context(memo), _namespace(namespace), name)


async def job_changed(*, namespace: str | None, labels: kopf.Labels, memo: Any, **_: Any) -> None:
    await reconcile(_context(memo), _namespace(namespace), labels[BUILD_LABEL])


async def deleted(
    *, namespace: str | None, name: str, body: kopf.Body, memo: Any, **_: Any
) -> None:
    count = await delete_jobs(_context(memo), _namespace(namespace), name)
    kopf.event(body, type="Normal", reason="JobsDeleted", message=f"deleted {count} Job(s)")


def unfinished(*, status: kopf.Status, **_: Any) -> bool:
    return status.get("phase") not in TERMINAL or status.get("observedGeneration") is None


def register(registry: kopf.OperatorRegistry, settings: OperatorSettings) -> None:
    """Register the handlers on `registry`, with the settings' timings."""
    backoff = settings.retry_s
    kopf.on.create(*_BUILDS, id="reconcile-created", backoff=backoff, registry=registry)(step)
    kopf.on.resume(*_BUILDS, id="reconcile-resumed", backoff=backoff, registry=registry)(step)
    kopf.on.update(
        *_BUILDS, id="reconcile-updated", field="spec", backoff=backoff, registry=registry
    )(step)
    kopf.on.delete(*_BUILDS, id="delete-jobs", backoff=backoff, registry=registry)(deleted)
    kopf.timer(
        *_BUILDS, id="resync", interval=settings.resync_s, idle=settings.resync_s,
        when=unfinished, registry=registry,
    )(step)  # fmt: skip
    kopf.on.event("batch", "v1", "jobs", labels={BUILD_LABEL: kopf.PRESENT}, registry=registry)(
        job_changed
    )
