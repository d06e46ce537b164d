"""Status conditions the Kubernetes way (metav1.Condition): type, status True|False|Unknown,
a CamelCase reason, a message, and a lastTransitionTime that moves only when status does."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Status = Literal["True", "False", "Unknown"]


@dataclass(frozen=True)
class Condition:
    type: str
    status: Status
    reason: str
    message: str = ""


TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # RFC 3339 in UTC, seconds precision, as the API server writes


def now() -> str:
    """The time now, as the API server writes times."""
    return datetime.datetime.now(datetime.UTC).strftime(TIME_FORMAT)


def parse_time(stamp: Any) -> float | None:
    """Unix time of a stamp written so (`now()`, the API server); None without one."""
    if not stamp:
        return None
    then = datetime.datetime.strptime(str(stamp), TIME_FORMAT)
    return then.replace(tzinfo=datetime.UTC).timestamp()


def apply(
    current: Iterable[Mapping[str, Any]],
    changes: Iterable[Condition],
    *,
    generation: int,
    at: str | None = None,
) -> list[dict[str, Any]]:
    """`current` with `changes` set: a condition whose status stays keeps its
    lastTransitionTime; reason, message and observedGeneration always follow the change.
    Conditions not changed stay as they are; the order is by first appearance."""
    stamp = at or now()
    result = {c["type"]: dict(c) for c in current}
    for change in changes:
        old = result.get(change.type)
        moved = old is None or old.get("status") != change.status
        result[change.type] = {
            "type": change.type,
            "status": change.status,
            "reason": change.reason,
            "message": change.message,
            "lastTransitionTime": stamp
            if moved or old is None
            else old.get("lastTransitionTime", stamp),
            "observedGeneration": generation,
        }
    return list(result.values())


def find(conditions: Iterable[Mapping[str, Any]], type_: str) -> Mapping[str, Any] | None:
    return next((c for c in conditions if c.get("type") == type_), None)


def transitions(
    before: Iterable[Mapping[str, Any]], after: Iterable[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """The conditions of `after` whose status or reason differ from `before`'s (new ones too)."""
    old = {c.get("type"): (c.get("status"), c.get("reason")) for c in before}
    return [c for c in after if old.get(c.get("type")) != (c.get("status"), c.get("reason"))]
