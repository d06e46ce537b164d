"""The EngineRollout controller's kopf handlers: each a line or two over rollout.py.

- create / resume / spec update of an EngineRollout (an `action` is a spec update), and a
  timer while it is unfinished: one step (the timer reads the gates and ends the soak);
- deletion: while streams may run the canary, every pipeline goes back to its stable routing
  before kopf's finalizer lets the object go.
"""

from __future__ import annotations

from typing import Any

import kopf

from heron_operator.handlers import context, counted, namespaced
from heron_operator.rollout import reconcile, restore
from heron_operator.rollout_spec import ENGINE_ROLLOUTS, TERMINAL
from heron_operator.settings import OperatorSettings

_ROLLOUTS = (ENGINE_ROLLOUTS.group, ENGINE_ROLLOUTS.version, ENGINE_ROLLOUTS.plural)


@counted("EngineRollout")
async def step(*, namespace: str | None, name: str, memo: Any, **_: Any) -> None:
    await reconcile(context(memo), namespaced(namespace), name)


@counted("EngineRollout")
async def deleted(
    *, namespace: str | None, name: str, body: kopf.Body, memo: Any, **_: Any
) -> None:
    ctx, ns = context(memo), namespaced(namespace)
    restored = await restore(ctx, ns, name)
    if restored:
        message = f"{restored} pipeline(s) back on their stable routing"
        kopf.event(body, type="Normal", reason="RolledBack", message=message)
    ctx.metrics.forget("EngineRollout", ns, name)


def unfinished(*, status: kopf.Status, **_: Any) -> bool:
    return status.get("phase") not in TERMINAL


def register(registry: kopf.OperatorRegistry, settings: OperatorSettings) -> None:
    """Register the handlers on `registry`, with the settings' timings."""
    backoff = settings.retry_s
    kopf.on.create(*_ROLLOUTS, id="step-created", backoff=backoff, registry=registry)(step)
    kopf.on.resume(*_ROLLOUTS, id="step-resumed", backoff=backoff, registry=registry)(step)
    kopf.on.update(*_ROLLOUTS, id="step-updated", field="spec", backoff=backoff, registry=registry)(
        step
    )
    kopf.on.delete(*_ROLLOUTS, id="restore-stable", backoff=backoff, registry=registry)(deleted)
    kopf.timer(
        *_ROLLOUTS, id="poll", interval=settings.rollout_poll_s, when=unfinished,
        registry=registry,
    )(step)  # fmt: skip
