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

from heron_operator.handlers import context, counted, namespaced
from heron_operator.jobs import BUILD_LABEL
from heron_operator.reconcile import delete_jobs, reconcile
from heron_operator.settings import OperatorSettings
from heron_operator.spec import ENGINE_BUILDS, TERMINAL

_BUILDS = (ENGINE_BUILDS.group, ENGINE_BUILDS.version, ENGINE_BUILDS.plural)


@counted("EngineBuild")
async def step(*, namespace: str | None, name: str, memo: Any, **_: Any) -> None:
    await reconcile(context(memo), namespaced(namespace), name)


@counted("EngineBuild")
async def job_changed(*, namespace: str | None, labels: kopf.Labels, memo: Any, **_: Any) -> None:
    await reconcile(context(memo), namespaced(namespace), labels[BUILD_LABEL])


@counted("EngineBuild")
async def deleted(
    *, namespace: str | None, name: str, body: kopf.Body, memo: Any, **_: Any
) -> None:
    ctx, ns = context(memo), namespaced(namespace)
    count = await delete_jobs(ctx, ns, name)
    kopf.event(body, type="Normal", reason="JobsDeleted", message=f"deleted {count} Job(s)")
    ctx.metrics.forget("EngineBuild", ns, name)


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
