"""What every controller's kopf handlers share: the operator's Context out of kopf's memo, the
namespace of a namespaced object, and the count of handler errors (heron_operator.metrics)."""

from __future__ import annotations

from typing import Any

import kopf

from heron_operator.metrics import counted
from heron_operator.steps import Context

__all__ = ["context", "counted", "namespaced"]


def context(memo: Any) -> Context:
    if not isinstance(memo, Context):  # run.py hands kopf a Context as the memo
        raise kopf.PermanentError(f"expected the operator's Context as memo, got {memo!r}")
    return memo


def namespaced(namespace: str | None) -> str:
    if namespace is None:  # every Heron resource and the Jobs are namespaced
        raise kopf.PermanentError("expected a namespaced object")
    return namespace
