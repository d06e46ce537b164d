"""The operator's RBAC is exactly what its code uses (docs/operator.md, "RBAC").

What it uses is read off the code, not listed by hand: every call of its API client
(`kube.get/list/create/patch/delete/pod_log`, heron_operator/kube.py) with the resource it names,
the resources kopf watches for its handlers (the registry the operator builds), the owners of the
Jobs it adopts, kopf's events and peering. The chart's ClusterRoles must grant that and nothing
more, with no wildcard. (conftest.py's `running_operator` checks the other way round: every
request the operator made in the tests is one the chart grants.)
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import kopf
import pytest
from heron_operator import engine_build, engine_rollout, training_run
from heron_operator.kube import Resource
from heron_operator.settings import OperatorSettings

from tests.operator import rbac

PACKAGE = Path(engine_build.__file__).parent
Use = tuple[str, str, str]  # (apiGroup, resource, verb)
# The API client's methods and the verb each is; pod_log reads pods/log.
KUBE_VERBS = {"get": "get", "list": "list", "create": "create", "patch": "patch",
              "delete": "delete", "pod_log": "get"}  # fmt: skip
# The helpers that take the resource as an argument: (argument index, verb, subresource).
GENERIC = {"fresh_step": (1, "get", ""), "write_status": (1, "patch", "status")}
# kopf's own needs: a handler's resource is listed and watched, and patched (finalizers,
# annotations) when kopf keeps state on it; events are posted; peering objects are watched and
# the operator's own is patched (a keep-alive).
WATCHED = ("list", "watch")
HANDLED = ("list", "watch", "patch")


def modules() -> Iterator[tuple[ModuleType, ast.Module]]:
    for path in sorted(PACKAGE.glob("*.py")):
        if path.stem == "__main__":  # runs the operator when imported
            continue
        module = importlib.import_module(f"heron_operator.{path.stem}")
        yield module, ast.parse(path.read_text(), str(path))


def _callee(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _on_kube(call: ast.Call) -> bool:
    """`<...>.kube.<verb>(...)` or `kube.<verb>(...)`."""
    func = call.func
    if not isinstance(func, ast.Attribute) or func.attr not in KUBE_VERBS:
        return False
    owner = func.value
    return (isinstance(owner, ast.Attribute) and owner.attr == "kube") or (
        isinstance(owner, ast.Name) and owner.id == "kube"
    )


def _resource(module: ModuleType, node: ast.expr) -> Resource | None:
    if isinstance(node, ast.Name):
        value = getattr(module, node.id, None)
        return value if isinstance(value, Resource) else None
    return None


def _enclosing(tree: ast.Module) -> dict[ast.AST, str]:
    """Each node's function name."""
    found: dict[ast.AST, str] = {}
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(function):
                found.setdefault(node, function.name)
    return found


def used_by_the_code() -> set[Use]:
    """(apiGroup, resource, verb) of every API call in the operator's code."""
    uses: set[Use] = set()
    for module, tree in modules():
        functions = _enclosing(tree)
        owners: set[Resource] = set()  # what this module steps on (fresh_step / write_status)
        adopts = False
        for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
            name = _callee(call)
            if _on_kube(call) and name == "pod_log":  # always a pod's log
                uses.add(("", "pods/log", "get"))
            elif _on_kube(call):
                resource = _resource(module, call.args[0]) if call.args else None
                if resource is None:
                    # A resource handed in: only the generic helpers may do that.
                    assert functions.get(call) in GENERIC, (
                        f"{module.__name__}: kube.{name} on a resource this test cannot name "
                        f"(in {functions.get(call)}): add the helper to GENERIC"
                    )
                    continue
                plural = resource.plural
                for keyword in call.keywords:
                    given = keyword.value
                    constant = given.value if isinstance(given, ast.Constant) else None
                    if keyword.arg == "subresource" and isinstance(constant, str) and constant:
                        plural = f"{plural}/{constant}"
                uses.add((resource.group, plural, KUBE_VERBS[name]))
            elif name in GENERIC and len(call.args) > GENERIC[name][0]:
                resource = _resource(module, call.args[GENERIC[name][0]])
                if resource is not None:
                    _, verb, sub = GENERIC[name]
                    uses.add((resource.group, f"{resource.plural}/{sub}".rstrip("/"), verb))
                    owners.add(resource)
            elif name == "adopt":
                adopts = True
            elif name == "event":
                uses.add(("", "events", "create"))
        if adopts:  # blockOwnerDeletion on the owner: `update` of its finalizers
            assert owners, f"{module.__name__} adopts Jobs for an owner this test cannot name"
            uses |= {(r.group, f"{r.plural}/finalizers", "update") for r in owners}
    return uses


def used_by_kopf(*, peering: bool) -> set[Use]:
    registry = kopf.OperatorRegistry()
    settings = OperatorSettings()
    for controller in (engine_build, engine_rollout, training_run):
        controller.register(registry, settings)
    uses: set[Use] = set()
    for kind, verbs in (("_changing", HANDLED), ("_spawning", HANDLED), ("_watching", WATCHED)):
        for handler in getattr(registry, kind).get_all_handlers():
            selector = handler.selector
            plural = selector.plural or selector.any_name
            assert selector.group is not None and plural, handler
            uses |= {(selector.group, plural, verb) for verb in verbs}
    uses.add(("", "events", "create"))  # kopf posts the controllers' events
    if peering:
        uses |= {("kopf.dev", "kopfpeerings", v) for v in ("list", "watch", "patch")}
    return uses


@pytest.fixture(scope="module")
def chart() -> None:
    if not rbac.have_helm():
        pytest.skip("helm is not installed: run make setup")


@pytest.mark.usefixtures("chart")
@pytest.mark.parametrize("peering", [True, False], ids=["peering", "standalone"])
def test_the_chart_grants_exactly_what_the_code_uses(peering: bool) -> None:
    rules = rbac.chart_rules(peering=peering)
    for rule in rules:
        for key in ("apiGroups", "resources", "verbs", "resourceNames"):
            assert not [v for v in rule.get(key, []) if "*" in v], rule
    needed = used_by_the_code() | used_by_kopf(peering=peering)
    granted = rbac.granted(rules)
    assert needed - granted == set(), "used but not granted"
    assert granted - needed == set(), "granted but not used"


def test_what_the_code_uses() -> None:
    """The derivation itself: the calls that matter are found (a refactor that hides them from
    it fails here rather than shrinking the RBAC)."""
    found = used_by_the_code()
    assert {
        ("batch", "jobs", "create"),
        ("batch", "jobs", "delete"),
        ("", "pods", "list"),
        ("", "pods/log", "get"),
        ("", "nodes", "list"),
        ("", "services", "list"),
        ("", "configmaps", "get"),
        ("heron.dev", "enginerollouts/status", "patch"),
        ("heron.dev", "enginebuilds", "get"),
        ("heron.dev", "enginebuilds/finalizers", "update"),
        ("heron.dev", "trainingruns/finalizers", "update"),
    } <= found
    assert ("heron.dev", "enginerollouts/finalizers", "update") not in found  # owns no Job
    assert ("", "nodes", "watch") not in found


@pytest.mark.usefixtures("chart")
def test_peering_is_granted_on_the_operators_own_object_only() -> None:
    rules = rbac.chart_rules(peering=True)
    (own,) = [r for r in rules if r.get("resourceNames")]
    assert own == {
        "apiGroups": ["kopf.dev"],
        "resources": ["kopfpeerings"],
        "resourceNames": ["heron-operator"],
        "verbs": ["patch"],
    }
    everywhere = rbac.chart_rules(peering=True, all_namespaces=True)
    assert ("kopf.dev", "clusterkopfpeerings", "watch") in rbac.granted(everywhere)
