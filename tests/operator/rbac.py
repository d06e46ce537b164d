"""The operator's RBAC as the chart renders it, and a check of API requests against it: what the
API server's authorizer would do with the operator's ServiceAccount (charts/heron/templates/
operator-rbac.yaml; docs/operator.md, "RBAC")."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from tests.conftest import REPO
from tests.support.helm import helm_binary, template
from tests.support.kube_emulator import Access

Json = dict[str, Any]
CHART = REPO / "charts" / "heron"
NAMESPACE = "video"


@functools.cache
def chart_rules(*, peering: bool = True, all_namespaces: bool = False) -> tuple[Json, ...]:
    """Every rule of the operator's ClusterRoles, rendered by the real helm."""
    values = {
        "operator.enabled": "true",
        "operator.leaderElection.enabled": str(peering).lower(),
        "operator.watch.allNamespaces": str(all_namespaces).lower(),
    }
    objects = template(CHART, release="heron", namespace=NAMESPACE, set_values=values)
    return tuple(
        rule
        for obj in objects
        if obj["kind"] == "ClusterRole" and "operator" in obj["metadata"]["name"]
        for rule in obj["rules"]
    )


def have_helm() -> bool:
    return helm_binary() is not None


def permits(rules: Iterable[Json], access: Access) -> bool:
    """Whether a rule grants `access` (no wildcard: the chart has none)."""
    for rule in rules:
        names = rule.get("resourceNames")
        if (
            access.group in rule["apiGroups"]
            and access.resource in rule["resources"]
            and access.verb in rule["verbs"]
            and (not names or access.name in names)
        ):
            return True
    return False


def denied(accesses: Iterable[Access], rules: Iterable[Json]) -> list[Access]:
    """The accesses no rule grants, each once."""
    kept = list(rules)
    return sorted({a for a in accesses if not permits(kept, a)}, key=repr)


def granted(rules: Iterable[Json]) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) of every rule, flattened."""
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
