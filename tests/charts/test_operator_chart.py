"""The operator's part of the chart (docs/operator.md): its three CRDs and kopf's two peering CRDs
(charts/heron/crds/), their examples (charts/heron/examples/), and the operator's Deployment,
ServiceAccount, RBAC and peering objects (templates/operator-*.yaml), rendered by the real helm
and read back.

The CRDs are checked as apiextensions.k8s.io/v1 objects of Kubernetes 1.29 and 1.33; the examples
and the refused objects (tests/charts/fixtures/operator/ and mutations of the examples) against
the CRDs' schemas. tests/support/kube_schemas does not evaluate CEL (x-kubernetes-validations):
the rules' text is checked here, and the rules are run with the PyPI package cel-python where it
is installed (after the schemas' defaults are applied, as the API server does); without it those
tests skip.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.conftest import REPO
from tests.support.helm import HelmError, lint, load_manifests, template
from tests.support.kube_schemas import crd_schemas_from_crds, validate

Objects = list[dict[str, Any]]
Schemas = dict[tuple[str, str], dict[str, Any]]

CHART = REPO / "charts" / "heron"
CRD_DIR = CHART / "crds"
EXAMPLES = CHART / "examples"
INVALID = REPO / "tests" / "charts" / "fixtures" / "operator"
DOC = REPO / "docs" / "operator.md"
RELEASE = "heron"  # contains the chart's name: objects are "heron-<component>"
NAMESPACE = "video"
KUBE_VERSIONS = ["1.29.0", "1.33.0"]
GROUP = "heron.dev"
API_VERSION = "heron.dev/v1alpha1"
OPERATOR = "heron-operator"
CLUSTER_NAME = f"{NAMESPACE}-{OPERATOR}"  # cluster-scoped names carry the release namespace
KINDS = {
    "TrainingRun": ("trainingruns", ["tr"]),
    "EngineBuild": ("enginebuilds", ["eb"]),
    "EngineRollout": ("enginerollouts", ["er"]),
}
PLURALS = [plural for plural, _ in KINDS.values()]
ON = {"operator.enabled": "true"}
PEERING = "heron-operator"
# kopf's peering CRDs, shipped with the chart (kopf does not create them).
KOPF_CRDS = ["clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"]
CRD_NAMES = sorted([f"{p}.{GROUP}" for p in PLURALS] + KOPF_CRDS)

# The rules of the operator's two ClusterRoles, exactly (with kopf's peering, namespaced).
NAMESPACED_RULES = [
    {
        "apiGroups": [GROUP],
        "resources": PLURALS,
        "verbs": ["get", "list", "watch", "patch"],
    },
    {
        "apiGroups": [GROUP],
        "resources": [f"{p}/status" for p in PLURALS],
        "verbs": ["patch"],
    },
    {
        "apiGroups": [GROUP],
        "resources": ["trainingruns/finalizers", "enginebuilds/finalizers"],
        "verbs": ["update"],
    },
    {
        "apiGroups": ["batch"],
        "resources": ["jobs"],
        "verbs": ["create", "get", "list", "watch", "delete"],
    },
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["services"], "verbs": ["list"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
]
NODE_RULES = [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]


def peering_rules(resource: str) -> list[dict[str, Any]]:
    """kopf watches every peering object and keeps alive in its own only."""
    return [
        {"apiGroups": ["kopf.dev"], "resources": [resource], "verbs": ["list", "watch"]},
        {
            "apiGroups": ["kopf.dev"],
            "resources": [resource],
            "resourceNames": [PEERING],
            "verbs": ["patch"],
        },
    ]


# A path may not climb out of its volume (traversal): no '..' segment.
NO_DOT_DOT = "!self.matches('(^|/)[.][.](/|$)')"

# Every CEL rule of the CRDs, by kind and schema path (where the API server reports it, before
# its fieldPath).
CEL_RULES: dict[str, dict[str, list[str]]] = {
    "TrainingRun": {
        "spec.taoSpec": ["has(self.inline) != has(self.configMapRef)"],
        "spec.dataset.subPath": [NO_DOT_DOT],
        "spec.dataset.mountPath": [NO_DOT_DOT],
        "spec.artifacts.subPath": [NO_DOT_DOT],
        "spec.prune.retrainSpec": ["has(self.inline) != has(self.configMapRef)"],
        "spec.calibration.images": [NO_DOT_DOT],
        "spec.calibration": ["!has(self.percentile) || self.method == 'percentile'"],
        "spec.gpu": ["self.count > 0 || !has(self.products) || size(self.products) == 0"],
    },
    "EngineBuild": {
        "spec": [
            "self.precision != 'INT8' || !has(self.model.onnx) || has(self.model.calibrationCache)",
            "self.precision != 'INT8' || !has(self.model.onnx) ||"
            " has(self.accuracyGate.calibrationImages)",
            "self.precision != 'INT8' || !has(self.model.onnx) || has(self.accuracyGate.evalData)",
        ],
        "spec.model": [
            "has(self.onnx) != has(self.fromTrainingRun)",
            "!has(self.calibrationCache) || has(self.onnx)",
        ],
        "spec.model.onnx": [NO_DOT_DOT],
        "spec.model.calibrationCache": [NO_DOT_DOT],
        "spec.batch": ["self.min <= self.opt && self.opt <= self.max"],
        "spec.accuracyGate.calibrationImages": [NO_DOT_DOT],
        "spec.accuracyGate.evalData": [NO_DOT_DOT],
        "spec.modelRepository.subPath": [NO_DOT_DOT],
    },
    "EngineRollout": {
        "spec.selector.matchExpressions[]": [
            "self.operator in ['In', 'NotIn'] ? has(self.values) && size(self.values) > 0"
            " : !has(self.values) || size(self.values) == 0"
        ],
        "spec.canary.streams": ["has(self.percent) != has(self.count)"],
        "spec.soak": ["duration(self) >= duration('1m') && duration(self) <= duration('168h')"],
    },
}

# The refused objects of tests/charts/fixtures/operator/, and what the API server says.
INVALID_FIXTURES = {
    "trainingrun-two-specs.yaml": "spec.taoSpec: give exactly one of inline and configMapRef",
    "trainingrun-prune-threshold.yaml": (
        "spec.prune.threshold: 1.5 is greater than the maximum of 1"
    ),
    "enginebuild-int8-without-cache.yaml": (
        "spec.model.calibrationCache: INT8 from an onnx file needs model.calibrationCache"
    ),
    "enginebuild-int8-without-eval-data.yaml": (
        "spec.accuracyGate.evalData: INT8 from an onnx file needs accuracyGate.evalData"
    ),
    "enginebuild-batch-order.yaml": "spec.batch: must be min <= opt <= max",
    "enginebuild-precision.yaml": "spec.precision: 'INT4' is not one of ['FP32', 'FP16', 'INT8']",
    "enginerollout-percent-and-count.yaml": (
        "spec.canary.streams: give exactly one of percent and count"
    ),
    "enginerollout-action.yaml": "spec.action: 'Rollback' is not one of ['', 'Promote', 'Abort']",
}


# --- renders and files, shared ---------------------------------------------------------------


class Renders:
    """helm template with the given --set values, each Kubernetes version, made once."""

    def __init__(self, chart: Path) -> None:
        self.chart = chart
        self.done: dict[tuple[str, str], Objects] = {}

    def __call__(self, kube_version: str = "1.33.0", **set_values: str) -> Objects:
        key = (json.dumps(set_values, sort_keys=True), kube_version)
        if key not in self.done:
            self.done[key] = render(self.chart, kube_version=kube_version, set_values=set_values)
        return self.done[key]


def render(chart: Path, **kwargs: Any) -> Objects:
    return template(chart, release=RELEASE, namespace=NAMESPACE, **kwargs)


@pytest.fixture(scope="module")
def renders(helm: Path, chart_dir: Path) -> Renders:
    return Renders(chart_dir)


@pytest.fixture(scope="module")
def all_crds() -> Objects:
    """The CRDs as written in charts/heron/crds/, one per file: Heron's and kopf's peering."""
    return [read_one(path) for path in sorted(CRD_DIR.glob("*.yaml"))]


@pytest.fixture(scope="module")
def crds(all_crds: Objects) -> Objects:
    """Heron's CRDs (group heron.dev)."""
    return [c for c in all_crds if c["spec"]["group"] == GROUP]


@pytest.fixture(scope="module")
def schemas(all_crds: Objects) -> Schemas:
    return crd_schemas_from_crds(all_crds)


@pytest.fixture(scope="module")
def cel() -> ModuleType:
    """cel-python, to run the CRDs' CEL rules; skips where it is not installed."""
    celpy: ModuleType = pytest.importorskip(
        "celpy", reason="cel-python is not installed: CEL rules not run"
    )
    return celpy


def read_one(path: Path) -> dict[str, Any]:
    objects = load_manifests(path.read_text())
    assert len(objects) == 1, f"{path.name}: {len(objects)} objects"
    return objects[0]


def examples() -> dict[str, dict[str, Any]]:
    """The examples by kind."""
    found = [read_one(path) for path in sorted(EXAMPLES.glob("*.yaml"))]
    return {obj["kind"]: obj for obj in found}


def example(kind: str) -> dict[str, Any]:
    return copy.deepcopy(examples()[kind])


def find(objects: Objects, kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name}: {len(found)} rendered"
    return found[0]


def crd_of(crds: Objects, kind: str) -> dict[str, Any]:
    (crd,) = [c for c in crds if c["spec"]["names"]["kind"] == kind]
    return crd


def version_of(crd: dict[str, Any]) -> dict[str, Any]:
    (version,) = crd["spec"]["versions"]
    return dict(version)


def root_schema(crd: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = version_of(crd)["schema"]["openAPIV3Schema"]
    return schema


def operator_objects(objects: Objects) -> Objects:
    """Every rendered object of the operator but its CRDs."""
    return [
        o
        for o in objects
        if o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "operator"
        and o["kind"] != "CustomResourceDefinition"
    ]


def operator_container(objects: Objects) -> dict[str, Any]:
    spec = find(objects, "Deployment", OPERATOR)["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    return dict(container)


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def values_file(folder: Path, values: dict[str, Any]) -> Path:
    path = folder / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


DELETE = object()  # set_path's value that removes the field


def set_path(obj: dict[str, Any], dotted: str, value: Any) -> None:
    """obj[a][b][c] = value for "a.b.c" (creating objects on the way); value DELETE removes it."""
    *parents, last = dotted.split(".")
    node = obj
    for part in parents:
        node = node.setdefault(part, {})
    if value is DELETE:
        node.pop(last, None)
    else:
        node[last] = value


# --- CEL, as the API server runs it -------------------------------------------------------------


def with_defaults(schema: dict[str, Any], value: Any) -> Any:
    """value with the schema's defaults filled in, as the API server does before validating."""
    if isinstance(value, dict):
        out = dict(value)
        properties: dict[str, Any] = schema.get("properties", {})
        for name, sub in properties.items():
            if name not in out and "default" in sub:
                out[name] = copy.deepcopy(sub["default"])
            if name in out:
                out[name] = with_defaults(sub, out[name])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name, item in out.items():
                if name not in properties:
                    out[name] = with_defaults(extra, item)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [with_defaults(schema["items"], item) for item in value]
    return value


def rules_by_path(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(schema path, rule) of every x-kubernetes-validations rule; arrays' items are `[]`."""
    for rule in schema.get("x-kubernetes-validations", ()):
        yield path, rule
    for name, sub in schema.get("properties", {}).items():
        yield from rules_by_path(sub, f"{path}.{name}" if path else name)
    if isinstance(schema.get("items"), dict):
        yield from rules_by_path(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from rules_by_path(schema["additionalProperties"], f"{path}[*]")


class Cel:
    """The CRDs' rules compiled with cel-python, each once."""

    def __init__(self, celpy: ModuleType) -> None:
        self.celpy = celpy
        self.env = celpy.Environment()
        self.programs: dict[str, Any] = {}

    def program(self, rule: str) -> Any:
        if rule not in self.programs:
            self.programs[rule] = self.env.program(self.env.compile(rule))
        return self.programs[rule]

    def holds(self, rule: str, value: Any) -> bool:
        try:
            result = self.program(rule).evaluate({"self": self.celpy.json_to_cel(value)})
        except self.celpy.CELEvalError:
            return False
        return not isinstance(result, self.celpy.CELEvalError) and bool(result)

    def errors(self, schema: dict[str, Any], value: Any, path: str = "") -> list[str]:
        """ "path: message" of every rule the (defaulted) value breaks, path with its fieldPath."""
        found = []
        for rule in schema.get("x-kubernetes-validations", ()):
            if not self.holds(rule["rule"], value):
                where = f"{path}{rule.get('fieldPath', '')}".lstrip(".") or "(root)"
                found.append(f"{where}: {rule['message']}")
        if isinstance(value, dict):
            properties: dict[str, Any] = schema.get("properties", {})
            for name, item in value.items():
                sub = properties.get(name, schema.get("additionalProperties"))
                if isinstance(sub, dict):
                    found += self.errors(sub, item, f"{path}.{name}")
        if isinstance(value, list) and isinstance(schema.get("items"), dict):
            for index, item in enumerate(value):
                found += self.errors(schema["items"], item, f"{path}[{index}]")
        return found


@pytest.fixture(scope="module")
def cel_rules(cel: ModuleType) -> Cel:
    return Cel(cel)


def refusals(obj: dict[str, Any], schemas: Schemas, cel: Cel | None) -> list[str]:
    """What the API server would refuse obj for: its schema (strict) and, with cel, its rules."""
    schema = schemas[(obj["apiVersion"], obj["kind"])]
    errors = validate(obj, "1.33", crd_schemas=schemas)
    if cel is not None:
        errors += cel.errors(schema, with_defaults(schema, obj))
    return errors


# --- the CRDs -----------------------------------------------------------------------------------


def test_one_crd_per_file_named_after_it(all_crds: Objects) -> None:
    names = sorted(path.name for path in CRD_DIR.glob("*.yaml"))
    assert names == [f"{name}.yaml" for name in CRD_NAMES]
    assert sorted(c["metadata"]["name"] for c in all_crds) == CRD_NAMES


def test_kopfs_peering_crds(all_crds: Objects) -> None:
    """As kopf's peering.yaml has them: v1, a status kopf writes through the object itself (a
    status subresource would drop those writes), open."""
    for crd in all_crds:
        if crd["spec"]["group"] != "kopf.dev":
            continue
        kind = crd["spec"]["names"]["kind"]
        assert kind in ("KopfPeering", "ClusterKopfPeering")
        assert crd["spec"]["scope"] == ("Cluster" if kind.startswith("Cluster") else "Namespaced")
        version = version_of(crd)
        assert (version["name"], version["served"], version["storage"]) == ("v1", True, True)
        assert "subresources" not in version
        status = root_schema(crd)["properties"]["status"]
        assert status["x-kubernetes-preserve-unknown-fields"] is True


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_the_crds_are_valid_and_rendered_with_the_chart(
    renders: Renders, kube_version: str
) -> None:
    """helm renders crds/ whether or not the operator runs; each is a strict apiextensions/v1."""
    for values in ({}, ON):
        rendered = [
            o for o in renders(kube_version, **values) if o["kind"] == "CustomResourceDefinition"
        ]
        assert sorted(c["metadata"]["name"] for c in rendered) == CRD_NAMES
        minor = ".".join(kube_version.split(".")[:2])
        errors = {c["metadata"]["name"]: validate(c, minor) for c in rendered}
        assert {name: e for name, e in errors.items() if e} == {}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_names_scope_version_and_subresources(crds: Objects, kind: str) -> None:
    crd = crd_of(crds, kind)
    plural, short_names = KINDS[kind]
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["spec"]["group"] == GROUP
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"] == {
        "kind": kind,
        "listKind": f"{kind}List",
        "plural": plural,
        "singular": plural[:-1],
        "shortNames": short_names,
        "categories": ["heron"],
    }
    version = version_of(crd)
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}
    root = root_schema(crd)
    assert root["required"] == ["spec"]
    assert set(root["properties"]) == {"apiVersion", "kind", "metadata", "spec", "status"}


def test_short_names_are_unique(all_crds: Objects) -> None:
    short = [n for c in all_crds for n in c["spec"]["names"].get("shortNames", [])]
    assert len(short) == len(set(short))


PRINTER_COLUMNS = {
    "TrainingRun": [
        ("Phase", "string", ".status.phase"),
        ("Step", "string", ".status.step"),
        ("mAP", "number", ".status.mAP"),
        ("INT8 Drop", "number", ".status.int8.apDrop"),
        ("Job", "string", ".status.job"),
        ("Age", "date", ".metadata.creationTimestamp"),
    ],
    "EngineBuild": [
        ("Model", "string", ".spec.modelName"),
        ("Precision", "string", ".spec.precision"),
        ("Phase", "string", ".status.phase"),
        ("Version", "integer", ".status.version"),
        ("AP Drop", "number", ".status.gate.apDrop"),
        ("Age", "date", ".metadata.creationTimestamp"),
    ],
    "EngineRollout": [
        ("Build", "string", ".spec.engineBuild"),
        ("Phase", "string", ".status.phase"),
        ("Stable", "string", ".status.stableVersion"),
        ("Canary", "string", ".status.canaryVersion"),
        ("Canary Streams", "integer", ".status.canaryStreams"),
        ("Age", "date", ".metadata.creationTimestamp"),
    ],
}


def schema_at(root: dict[str, Any], json_path: str) -> dict[str, Any] | None:
    node: dict[str, Any] | None = root
    for part in json_path.strip(".").split("."):
        if node is None:
            return None
        node = node.get("properties", {}).get(part)
    return node


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_printer_columns_name_fields_of_the_schema(crds: Objects, kind: str) -> None:
    crd = crd_of(crds, kind)
    columns = version_of(crd)["additionalPrinterColumns"]
    assert [(c["name"], c["type"], c["jsonPath"]) for c in columns] == PRINTER_COLUMNS[kind]
    root = root_schema(crd)
    for column in columns:
        if column["jsonPath"].startswith(".metadata."):
            continue
        field = schema_at(root, column["jsonPath"])
        assert field is not None, column
        assert field["type"] == column["type"], column


STATUS_PHASES = {
    "TrainingRun": ["Pending", "Running", "Succeeded", "Failed"],
    "EngineBuild": ["Pending", "Gating", "Building", "Succeeded", "Failed"],
    "EngineRollout": [
        "Pending",
        "Loading",
        "Canary",
        "Promoting",
        "Promoted",
        "RollingBack",
        "RolledBack",
        "Failed",
    ],
}


# The kinds whose CRD still leaves status.kopf open: none. The operator handles every kind, and
# kopf's progress and diff-base are annotations (heron_operator.run).
KOPF_STATUS: set[str] = set()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_status_has_phase_generation_and_api_conventions_conditions(
    crds: Objects, kind: str
) -> None:
    status = root_schema(crd_of(crds, kind))["properties"]["status"]["properties"]
    assert status["phase"]["enum"] == STATUS_PHASES[kind]
    assert status["observedGeneration"] == {"type": "integer", "format": "int64", "minimum": 0}
    conditions = status["conditions"]
    assert conditions["type"] == "array"
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    item = conditions["items"]
    # metav1.Condition: every field, what is required, the enum and formats.
    assert sorted(item["properties"]) == sorted(
        ["type", "status", "reason", "message", "lastTransitionTime", "observedGeneration"]
    )
    assert sorted(item["required"]) == sorted(
        ["type", "status", "reason", "message", "lastTransitionTime"]
    )
    assert item["properties"]["status"]["enum"] == ["True", "False", "Unknown"]
    assert item["properties"]["lastTransitionTime"]["format"] == "date-time"
    assert item["properties"]["reason"]["minLength"] == 1
    if kind in KOPF_STATUS:
        # Left open for kopf's bookkeeping: preserved, not pruned.
        assert status["kopf"]["x-kubernetes-preserve-unknown-fields"] is True
    else:
        # The operator keeps kopf's state in heron.dev/* annotations (run.py): kopf writes
        # nothing into the status, which is the operator's alone.
        assert "kopf" not in status


def test_engine_build_has_the_shape_the_operator_codes_against(crds: Objects) -> None:
    root = root_schema(crd_of(crds, "EngineBuild"))
    spec = root["properties"]["spec"]
    props = spec["properties"]
    assert sorted(props) == sorted(
        [
            "model",
            "modelName",
            "precision",
            "batch",
            "accuracyGate",
            "gpuProducts",
            "rtx",
            "onnxRuntime",
            "modelRepository",
            "image",
        ]
    )
    assert sorted(spec["required"]) == ["model", "modelName", "modelRepository"]
    assert sorted(props["model"]["properties"]) == ["calibrationCache", "fromTrainingRun", "onnx"]
    assert props["precision"]["enum"] == ["FP32", "FP16", "INT8"]
    for bound in ("min", "opt", "max"):
        batch = props["batch"]["properties"][bound]
        assert (batch["type"], batch["minimum"], batch["maximum"]) == ("integer", 1, 64)
    gate = props["accuracyGate"]["properties"]
    assert sorted(gate) == ["calibrationImages", "evalData", "maxApDrop"]
    assert (gate["maxApDrop"]["minimum"], gate["maxApDrop"]["maximum"]) == (0, 1)
    assert gate["maxApDrop"]["default"] == 0.02
    # Paths on the model volume, as model.onnx and model.calibrationCache are.
    for path in ("calibrationImages", "evalData"):
        assert {k: v for k, v in gate[path].items() if k != "description"} == {
            k: v for k, v in props["model"]["properties"]["onnx"].items() if k != "description"
        }
    assert props["gpuProducts"]["items"]["type"] == "string"
    assert props["rtx"]["properties"]["enabled"] == {"type": "boolean", "default": True}
    assert props["onnxRuntime"]["properties"]["enabled"] == {"type": "boolean", "default": False}
    assert sorted(props["modelRepository"]["properties"]) == ["claimName", "subPath"]
    status = root["properties"]["status"]["properties"]
    assert sorted(status) == sorted(
        [
            "phase",
            "message",
            "observedGeneration",
            "conditions",
            "gate",
            "builds",
            "version",
        ]
    )
    assert sorted(status["gate"]["properties"]) == ["apDrop", "message", "passed"]
    assert sorted(status["builds"]["items"]["properties"]) == sorted(
        ["product", "job", "phase", "plan", "version", "message"]
    )


def test_rollout_and_training_have_their_fields(crds: Objects) -> None:
    rollout = root_schema(crd_of(crds, "EngineRollout"))["properties"]
    assert sorted(rollout["spec"]["properties"]) == sorted(
        ["engineBuild", "selector", "canary", "soak", "gates", "action"]
    )
    assert rollout["spec"]["properties"]["action"]["enum"] == ["", "Promote", "Abort"]
    assert sorted(rollout["spec"]["properties"]["gates"]["properties"]) == sorted(
        ["maxApDrop", "minFpsRatio", "maxErrorRate", "maxDetectionRateDrift"]
    )
    selector = rollout["spec"]["properties"]["selector"]["properties"]
    assert sorted(selector) == ["matchExpressions", "matchLabels"]
    assert selector["matchExpressions"]["items"]["properties"]["operator"]["enum"] == [
        "In",
        "NotIn",
        "Exists",
        "DoesNotExist",
    ]
    for field in ("stableVersion", "canaryVersion", "canaryStreams", "gates", "conditions"):
        assert field in rollout["status"]["properties"]

    training = root_schema(crd_of(crds, "TrainingRun"))["properties"]
    assert {"taoSpec", "dataset", "artifacts", "prune", "calibration"} <= set(
        training["spec"]["properties"]
    )
    assert sorted(training["spec"]["properties"]["dataset"]["properties"]) == [
        "claimName",
        "mountPath",
        "subPath",
    ]
    status = training["status"]["properties"]
    assert status["step"]["enum"] == [
        "Train",
        "Prune",
        "Retrain",
        "Evaluate",
        "Export",
        "Calibrate",
    ]
    for field in ("ap", "mAP", "int8", "artifacts"):
        assert field in status
    assert sorted(status["int8"]["properties"]) == ["ap", "apDrop", "mAP"]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_cel_rules_are_there(crds: Objects, kind: str) -> None:
    """The rules the validator cannot run: their text, where they sit, a message and a reason."""
    found: dict[str, list[str]] = {}
    for path, rule in rules_by_path(root_schema(crd_of(crds, kind))):
        found.setdefault(path, []).append(rule["rule"])
        assert rule["message"] and "messageExpression" not in rule, rule
        assert rule["reason"] in ("FieldValueInvalid", "FieldValueRequired"), rule
    assert found == CEL_RULES[kind]


def test_rule_field_paths_name_fields_of_the_schema(crds: Objects) -> None:
    for crd in crds:
        root = root_schema(crd)
        for path, rule in rules_by_path(root):
            if "fieldPath" not in rule:
                continue
            node: dict[str, Any] | None = root
            for part in path.split("."):
                node = None if node is None else _child(node, part)
            for part in rule["fieldPath"].strip(".").split("."):
                node = None if node is None else node.get("properties", {}).get(part)
            assert node is not None, (crd["metadata"]["name"], path, rule["fieldPath"])


def _child(node: dict[str, Any], part: str) -> dict[str, Any] | None:
    name = part.removesuffix("[]")
    child: dict[str, Any] | None = node.get("properties", {}).get(name)
    if child is not None and part.endswith("[]"):
        child = child.get("items")
    return child


def test_defaults_are_valid_for_their_schema(crds: Objects, schemas: Schemas) -> None:
    """The API server refuses a CRD whose defaults break its schema: an object with nothing but
    the required fields (and every optional object present, empty) defaults to a valid one."""
    for kind, obj in examples().items():
        schema = schemas[(API_VERSION, kind)]
        bare = {
            "apiVersion": API_VERSION,
            "kind": kind,
            "metadata": {"name": "bare"},
            "spec": minimal_spec(kind),
        }
        defaulted = with_defaults(schema, bare)
        assert validate(defaulted, "1.33", crd_schemas=schemas) == [], kind
        assert validate(with_defaults(schema, obj), "1.33", crd_schemas=schemas) == [], kind


def minimal_spec(kind: str) -> dict[str, Any]:
    if kind == "TrainingRun":
        return {
            "taoSpec": {"configMapRef": {"name": "spec"}},
            "dataset": {"claimName": "data"},
            "artifacts": {"claimName": "models"},
            "prune": {"retrainSpec": {"configMapRef": {"name": "retrain"}}},
            "calibration": {},
            "gpu": {},
            "resources": {},
        }
    if kind == "EngineBuild":
        return {
            "model": {"fromTrainingRun": "run"},
            "modelName": "facemask",
            "modelRepository": {"claimName": "models"},
        }
    return {"engineBuild": "build", "selector": {}}


def test_defaults(crds: Objects, schemas: Schemas) -> None:
    build = with_defaults(
        schemas[(API_VERSION, "EngineBuild")], {"spec": minimal_spec("EngineBuild")}
    )["spec"]
    assert build["precision"] == "FP16"
    assert build["batch"] == {"min": 1, "opt": 4, "max": 16}
    assert build["accuracyGate"] == {"maxApDrop": 0.02}
    assert build["rtx"] == {"enabled": True}
    assert build["modelRepository"] == {"claimName": "models", "subPath": ""}
    rollout = with_defaults(
        schemas[(API_VERSION, "EngineRollout")], {"spec": minimal_spec("EngineRollout")}
    )["spec"]
    assert rollout["canary"] == {"streams": {"percent": 10}}
    assert rollout["soak"] == "10m"
    assert rollout["action"] == ""
    assert rollout["gates"] == {
        "maxApDrop": 0.02,
        "minFpsRatio": 0.95,
        "maxErrorRate": 0.01,
        "maxDetectionRateDrift": 0.2,
    }


# --- the examples and the refused objects ---------------------------------------------------------


def test_an_example_of_each_kind(schemas: Schemas) -> None:
    found = examples()
    assert sorted(found) == sorted(KINDS)
    assert sorted(path.name for path in EXAMPLES.glob("*.yaml")) == [
        "enginebuild.yaml",
        "enginerollout.yaml",
        "trainingrun.yaml",
    ]
    for kind, obj in found.items():
        assert obj["apiVersion"] == API_VERSION
        assert validate(obj, "1.29", crd_schemas=schemas) == [], kind
        assert validate(obj, "1.33", crd_schemas=schemas) == [], kind


def test_the_examples_are_the_face_mask_model_end_to_end() -> None:
    found = examples()
    run, build, rollout = found["TrainingRun"], found["EngineBuild"], found["EngineRollout"]
    assert build["spec"]["model"] == {"fromTrainingRun": run["metadata"]["name"]}
    assert rollout["spec"]["engineBuild"] == build["metadata"]["name"]
    assert build["spec"]["modelName"] == "facemask"
    assert build["spec"]["precision"] == "INT8"
    # The face-mask pipeline of docs/deploy.md, by the label every pipeline object carries.
    assert rollout["spec"]["selector"] == {"matchLabels": {"heron.dev/pipeline": "facemask"}}
    assert len({o["metadata"]["namespace"] for o in found.values()}) == 1


def test_the_examples_keep_the_cel_rules(schemas: Schemas, cel_rules: Cel) -> None:
    for kind, obj in examples().items():
        assert refusals(obj, schemas, cel_rules) == [], kind


@pytest.mark.parametrize("name", sorted(INVALID_FIXTURES))
def test_refused_objects_name_the_field(schemas: Schemas, name: str) -> None:
    """Each fixture is refused, the field named. Those refused by a CEL rule need cel-python."""
    obj = read_one(INVALID / name)
    schema = schemas[(obj["apiVersion"], obj["kind"])]
    errors = validate(obj, "1.33", crd_schemas=schemas)
    if not errors:
        celpy = pytest.importorskip("celpy", reason="cel-python is not installed: CEL not run")
        errors = Cel(celpy).errors(schema, with_defaults(schema, obj))
    assert errors == [INVALID_FIXTURES[name]]


def test_every_refused_object_has_a_fixture_and_each_kind_one() -> None:
    assert sorted(path.name for path in INVALID.glob("*.yaml")) == sorted(INVALID_FIXTURES)
    kinds = {read_one(INVALID / name)["kind"] for name in INVALID_FIXTURES}
    assert kinds == set(KINDS)


# Changes to an example the schema refuses: (kind, path, value, the error).
SCHEMA_REFUSALS: list[tuple[str, str, Any, str]] = [
    ("TrainingRun", "spec.taoSpec", DELETE, "spec.taoSpec: required field is missing"),
    ("TrainingRun", "spec.epoch", 3, "spec.epoch: unknown field"),
    ("TrainingRun", "spec.dataset.subPath", "/abs", "spec.dataset.subPath: '/abs' does not match"),
    ("TrainingRun", "spec.calibration.method", "kl", "spec.calibration.method: 'kl' is not one of"),
    ("TrainingRun", "spec.gpu.count", -1, "spec.gpu.count: -1 is less than the minimum of 0"),
    ("TrainingRun", "spec.taoSpec.configMapRef.name", "Spec_1", "spec.taoSpec.configMapRef.name"),
    ("EngineBuild", "spec.batch.max", 128, "spec.batch.max: 128 is greater than the maximum of 64"),
    ("EngineBuild", "spec.batch.min", 0, "spec.batch.min: 0 is less than the minimum of 1"),
    ("EngineBuild", "spec.accuracyGate.maxApDrop", 1.5, "spec.accuracyGate.maxApDrop: 1.5 is"),
    ("EngineBuild", "spec.modelName", "Face Mask", "spec.modelName: 'Face Mask' does not match"),
    (
        "EngineBuild",
        "spec.model.onnx",
        "model.onnx",
        "spec.model.onnx: 'model.onnx' does not match",
    ),
    (
        "EngineBuild",
        "spec.accuracyGate.calibrationImages",
        "calib",
        "spec.accuracyGate.calibrationImages: 'calib' does not match",
    ),
    (
        "EngineBuild",
        "spec.accuracyGate.evalData",
        "kitti/val",
        "spec.accuracyGate.evalData: 'kitti/val' does not match",
    ),
    ("EngineBuild", "spec.modelRepository", DELETE, "spec.modelRepository: required field is"),
    ("EngineBuild", "spec.rtx.enabled", "yes", "spec.rtx.enabled: expected boolean"),
    ("EngineBuild", "spec.gpuProducts", ["NVIDIA L4"], "spec.gpuProducts[0]: 'NVIDIA L4' does not"),
    ("EngineRollout", "spec.canary.streams.percent", 0, "spec.canary.streams.percent: 0 is less"),
    ("EngineRollout", "spec.canary.streams.percent", 101, "spec.canary.streams.percent: 101 is"),
    ("EngineRollout", "spec.soak", "ten minutes", "spec.soak: 'ten minutes' does not match"),
    ("EngineRollout", "spec.gates.minFpsRatio", 1.2, "spec.gates.minFpsRatio: 1.2 is greater"),
    ("EngineRollout", "spec.engineBuild", DELETE, "spec.engineBuild: required field is missing"),
    (
        "EngineRollout",
        "spec.selector.matchExpressions",
        [{"key": "heron.dev/pipeline", "operator": "Matches", "values": ["x"]}],
        "spec.selector.matchExpressions[0].operator: 'Matches' is not one of",
    ),
    # A path outside the model volume, an image with a scheme: refused by the schema.
    ("EngineBuild", "spec.model.onnx", "/etc/passwd", "spec.model.onnx: '/etc/passwd' does not"),
    ("EngineBuild", "spec.accuracyGate.evalData", "/data/x", "spec.accuracyGate.evalData: '/data"),
    ("EngineBuild", "spec.image", "http://evil.example/e:1", "spec.image: 'http://evil.example"),
    ("EngineBuild", "spec.image", "file:///etc/passwd", "spec.image: 'file:///etc/passwd' does"),
    ("TrainingRun", "spec.image", "docker://heron-training", "spec.image: 'docker://heron-tr"),
    ("TrainingRun", "spec.image", "heron training", "spec.image: 'heron training' does not"),
]


@pytest.mark.parametrize(
    ("kind", "path", "value", "error"),
    SCHEMA_REFUSALS,
    ids=[f"{kind}-{path}-{value}" for kind, path, value, _ in SCHEMA_REFUSALS],
)
def test_the_schema_refuses_naming_the_field(
    schemas: Schemas, kind: str, path: str, value: Any, error: str
) -> None:
    obj = example(kind)
    set_path(obj, path, value)
    errors = validate(obj, "1.33", crd_schemas=schemas)
    assert len(errors) == 1 and errors[0].startswith(error), errors


# An INT8 EngineBuild of an ONNX file: its calibration cache and its accuracy gate's data.
ONNX_AND_CACHE = {"onnx": "/models/m.onnx", "calibrationCache": "/models/c.bin"}
GATE_DATA = {"calibrationImages": "/models/calib", "evalData": "/models/kitti-val"}

# Changes to an example only a CEL rule refuses: (kind, changes, the error or None for valid).
CEL_CASES: list[tuple[str, dict[str, Any], str | None]] = [
    (
        "TrainingRun",
        {"spec.taoSpec": {}},
        "spec.taoSpec: give exactly one of inline and configMapRef",
    ),
    ("TrainingRun", {"spec.taoSpec": {"inline": "random_seed: 42\n"}}, None),
    (
        "TrainingRun",
        {"spec.prune": {"retrainSpec": {"inline": "x", "configMapRef": {"name": "r"}}}},
        "spec.prune.retrainSpec: give exactly one of inline and configMapRef",
    ),
    ("TrainingRun", {"spec.prune": {}}, None),
    (
        "TrainingRun",
        {"spec.calibration.percentile": 99.99},
        "spec.calibration.percentile: percentile is only read with method percentile",
    ),
    (
        "TrainingRun",
        {"spec.calibration.percentile": 99.99, "spec.calibration.method": "percentile"},
        None,
    ),
    ("TrainingRun", {"spec.gpu.count": 0}, "spec.gpu.products: products need count above 0"),
    ("TrainingRun", {"spec.gpu": {"count": 0}}, None),
    (
        "TrainingRun",
        {"spec.dataset.subPath": "a/../b"},
        "spec.dataset.subPath: must not contain a '..' segment",
    ),
    ("TrainingRun", {"spec.dataset.subPath": "a/..b/c"}, None),
    (
        "TrainingRun",
        {"spec.dataset.mountPath": "/data/../etc"},
        "spec.dataset.mountPath: must not contain a '..' segment",
    ),
    (
        "TrainingRun",
        {"spec.calibration.images": "../other-dataset"},
        "spec.calibration.images: must not contain a '..' segment",
    ),
    (
        "TrainingRun",
        {"spec.image": "registry.local:5000/heron/training:1@sha256:" + "0" * 64},
        None,
    ),
    (
        "EngineBuild",
        {"spec.model": {"onnx": "/models/../etc/model.onnx"}, "spec.precision": "FP16"},
        "spec.model.onnx: must not contain a '..' segment",
    ),
    (
        "EngineBuild",
        {
            "spec.model": {"onnx": "/models/m.onnx"},
            "spec.precision": "FP16",
            "spec.accuracyGate.evalData": "/models/kitti/..",
        },
        "spec.accuracyGate.evalData: must not contain a '..' segment",
    ),
    (
        "EngineBuild",
        {"spec.model": {"onnx": "/models/a..b/m.onnx"}, "spec.precision": "FP16"},
        None,
    ),
    (
        "EngineBuild",
        {
            "spec.model": {"onnx": "/models/m.onnx", "fromTrainingRun": "run"},
            "spec.precision": "FP16",
        },
        "spec.model: give exactly one of onnx and fromTrainingRun",
    ),
    ("EngineBuild", {"spec.model": {}}, "spec.model: give exactly one of onnx and fromTrainingRun"),
    (
        "EngineBuild",
        {"spec.model.calibrationCache": "/models/calibration.bin"},
        "spec.model.calibrationCache: calibrationCache goes with onnx (a TrainingRun brings its"
        " own)",
    ),
    (
        "EngineBuild",
        {"spec.model": {"onnx": "/models/facemask/model.onnx"}, "spec.accuracyGate": GATE_DATA},
        "spec.model.calibrationCache: INT8 from an onnx file needs model.calibrationCache",
    ),
    (
        "EngineBuild",
        {"spec.model": {"onnx": "/models/m.onnx"}, "spec.precision": "FP16"},
        None,  # FP16: no calibration cache, no gate
    ),
    (
        "EngineBuild",
        {"spec.model": ONNX_AND_CACHE, "spec.accuracyGate": GATE_DATA},
        None,
    ),
    (
        "EngineBuild",
        {"spec.model": ONNX_AND_CACHE, "spec.accuracyGate.evalData": "/models/kitti-val"},
        "spec.accuracyGate.calibrationImages: INT8 from an onnx file needs"
        " accuracyGate.calibrationImages",
    ),
    (
        "EngineBuild",
        {"spec.model": ONNX_AND_CACHE, "spec.accuracyGate.calibrationImages": "/models/calib"},
        "spec.accuracyGate.evalData: INT8 from an onnx file needs accuracyGate.evalData",
    ),
    (
        "EngineBuild",
        {"spec.model": ONNX_AND_CACHE, "spec.precision": "FP32"},
        None,  # only INT8 is gated
    ),
    (
        "EngineBuild",
        {"spec.batch": {"min": 1, "opt": 16, "max": 8}},
        "spec.batch: must be min <= opt <= max",
    ),
    ("EngineBuild", {"spec.batch": {"min": 4, "opt": 4, "max": 4}}, None),
    (
        "EngineBuild",
        {"spec.precision": DELETE, "spec.model": {"onnx": "/models/m.onnx"}},
        None,  # FP16 by default: no calibration cache needed
    ),
    (
        "EngineRollout",
        {"spec.canary.streams": {}},
        "spec.canary.streams: give exactly one of percent and count",
    ),
    ("EngineRollout", {"spec.canary.streams": {"count": 1}}, None),
    ("EngineRollout", {"spec.soak": "30s"}, "spec.soak: must be between 1m and 168h"),
    ("EngineRollout", {"spec.soak": "200h"}, "spec.soak: must be between 1m and 168h"),
    ("EngineRollout", {"spec.soak": "1h30m"}, None),
    (
        "EngineRollout",
        {"spec.selector": {"matchExpressions": [{"key": "heron.dev/pipeline", "operator": "In"}]}},
        "spec.selector.matchExpressions[0].values: In and NotIn need values, Exists and"
        " DoesNotExist take none",
    ),
    (
        "EngineRollout",
        {
            "spec.selector": {
                "matchExpressions": [
                    {"key": "heron.dev/pipeline", "operator": "Exists"},
                    {"key": "tier", "operator": "DoesNotExist", "values": ["x"]},
                ]
            }
        },
        "spec.selector.matchExpressions[1].values: In and NotIn need values, Exists and"
        " DoesNotExist take none",
    ),
    (
        "EngineRollout",
        {
            "spec.selector": {
                "matchExpressions": [{"key": "t", "operator": "NotIn", "values": ["a"]}]
            }
        },
        None,
    ),
]


@pytest.mark.parametrize(
    ("kind", "changes", "error"),
    CEL_CASES,
    ids=[
        f"{kind}-{'-'.join(changes)}-{'refused' if e else 'valid'}"
        for kind, changes, e in CEL_CASES
    ],
)
def test_the_cel_rules_refuse_naming_the_field(
    schemas: Schemas, cel_rules: Cel, kind: str, changes: dict[str, Any], error: str | None
) -> None:
    obj = example(kind)
    for path, value in changes.items():
        set_path(obj, path, value)
    assert validate(obj, "1.33", crd_schemas=schemas) == []  # only CEL can refuse these
    assert refusals(obj, schemas, cel_rules) == ([error] if error else [])


def test_every_rule_compiles_in_cel(crds: Objects, cel_rules: Cel) -> None:
    for crd in crds:
        for _, rule in rules_by_path(root_schema(crd)):
            cel_rules.program(rule["rule"])


# --- the operator in the chart --------------------------------------------------------------------


def test_the_operator_is_off_by_default(renders: Renders) -> None:
    assert yaml.safe_load((CHART / "values.yaml").read_text())["operator"]["enabled"] is False
    assert operator_objects(renders()) == []


def test_what_the_operator_makes(renders: Renders) -> None:
    made = sorted(
        (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"])
        for o in operator_objects(renders(**ON))
    )
    assert made == [
        ("ClusterRole", "", CLUSTER_NAME),
        ("ClusterRole", "", f"{CLUSTER_NAME}-nodes"),
        ("ClusterRoleBinding", "", f"{CLUSTER_NAME}-nodes"),
        ("Deployment", NAMESPACE, OPERATOR),
        ("KopfPeering", NAMESPACE, PEERING),
        ("NetworkPolicy", NAMESPACE, OPERATOR),
        ("RoleBinding", NAMESPACE, OPERATOR),
        ("ServiceAccount", NAMESPACE, OPERATOR),
    ]


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize(
    "values",
    [
        ON,
        {**ON, "operator.watch.allNamespaces": "true"},
        {**ON, "operator.leaderElection.enabled": "false", "triton.enabled": "true"},
    ],
    ids=["default", "all-namespaces", "standalone-triton"],
)
def test_every_operator_object_is_valid(
    renders: Renders, schemas: Schemas, values: dict[str, str], kube_version: str
) -> None:
    """Strictly, built-in objects against Kubernetes' schemas, the peering objects against
    kopf's CRDs."""
    minor = ".".join(kube_version.split(".")[:2])
    objects = [
        o for o in renders(kube_version, **values) if o["kind"] != "CustomResourceDefinition"
    ]
    errors = {
        f"{o['kind']}/{o['metadata']['name']}": validate(o, minor, crd_schemas=schemas)
        for o in objects
    }
    assert {name: e for name, e in errors.items() if e} == {}


def all_rules(objects: Objects) -> Iterator[tuple[str, dict[str, Any]]]:
    for obj in objects:
        if obj["kind"] in ("Role", "ClusterRole"):
            for rule in obj["rules"]:
                yield f"{obj['kind']}/{obj['metadata']['name']}", rule


@pytest.mark.parametrize(
    ("values", "peering"),
    [
        ({}, peering_rules("kopfpeerings")),
        ({"operator.watch.allNamespaces": "true"}, peering_rules("clusterkopfpeerings")),
        ({"operator.leaderElection.enabled": "false"}, []),
    ],
    ids=["namespaces", "all-namespaces", "standalone"],
)
def test_rbac_lists_exactly_what_the_operator_uses(
    renders: Renders, values: dict[str, str], peering: list[dict[str, Any]]
) -> None:
    objects = renders(**ON, **values)
    for where, rule in all_rules(objects):
        for key in ("verbs", "resources", "apiGroups", "resourceNames", "nonResourceURLs"):
            assert not [v for v in rule.get(key, []) if "*" in v], (where, rule)
    assert find(objects, "ClusterRole", CLUSTER_NAME)["rules"] == NAMESPACED_RULES + peering
    assert find(objects, "ClusterRole", f"{CLUSTER_NAME}-nodes")["rules"] == NODE_RULES
    roles = sorted(f"{o['kind']}/{o['metadata']['name']}" for o in operator_objects(objects))
    assert [r for r in roles if r.split("/")[0] in ("Role", "ClusterRole")] == [
        f"ClusterRole/{CLUSTER_NAME}",
        f"ClusterRole/{CLUSTER_NAME}-nodes",
    ]
    assert not [o for o in objects if o["kind"] == "ClusterRole" and "aggregationRule" in o]


def binding_targets(objects: Objects) -> list[tuple[str, str, str, str]]:
    """(binding kind, its namespace or "", role kind, role name) of every binding, each to the
    operator's ServiceAccount and no one else."""
    found = []
    for obj in objects:
        if obj["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        assert obj["subjects"] == [
            {"kind": "ServiceAccount", "name": OPERATOR, "namespace": NAMESPACE}
        ]
        role = obj["roleRef"]
        assert role["apiGroup"] == "rbac.authorization.k8s.io"
        namespace = obj["metadata"].get("namespace", "")
        found.append((obj["kind"], namespace, role["kind"], role["name"]))
    return sorted(found)


def peerings(objects: Objects) -> list[tuple[str, str, str]]:
    return sorted(
        (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"])
        for o in objects
        if o["apiVersion"] == "kopf.dev/v1"
    )


def test_bindings_and_peerings_follow_the_watched_namespaces(renders: Renders) -> None:
    # The release's namespace only, by default.
    default = renders(**ON)
    assert binding_targets(default) == [
        ("ClusterRoleBinding", "", "ClusterRole", f"{CLUSTER_NAME}-nodes"),
        ("RoleBinding", NAMESPACE, "ClusterRole", CLUSTER_NAME),
    ]
    assert peerings(default) == [("KopfPeering", NAMESPACE, PEERING)]
    # Listed namespaces: a RoleBinding and a KopfPeering in each, nothing more cluster-wide.
    listed = renders(**ON, **{"operator.watch.namespaces": "{cams,lab}"})
    assert binding_targets(listed) == [
        ("ClusterRoleBinding", "", "ClusterRole", f"{CLUSTER_NAME}-nodes"),
        ("RoleBinding", "cams", "ClusterRole", CLUSTER_NAME),
        ("RoleBinding", "lab", "ClusterRole", CLUSTER_NAME),
    ]
    assert peerings(listed) == [("KopfPeering", "cams", PEERING), ("KopfPeering", "lab", PEERING)]
    # Every namespace: ClusterRoleBindings and a ClusterKopfPeering.
    everywhere = renders(**ON, **{"operator.watch.allNamespaces": "true"})
    assert binding_targets(everywhere) == [
        ("ClusterRoleBinding", "", "ClusterRole", CLUSTER_NAME),
        ("ClusterRoleBinding", "", "ClusterRole", f"{CLUSTER_NAME}-nodes"),
    ]
    assert peerings(everywhere) == [("ClusterKopfPeering", "", PEERING)]


def test_the_operator_serves_the_namespaces_of_the_values(renders: Renders) -> None:
    def served(**values: str) -> list[str]:
        env = env_of(operator_container(renders(**ON, **values)))
        names: list[str] = json.loads(env["HERON_OPERATOR_NAMESPACES"])
        return names

    assert served() == [NAMESPACE]
    assert served(**{"operator.watch.namespaces": "{cams,lab}"}) == ["cams", "lab"]
    assert served(**{"operator.watch.allNamespaces": "true"}) == []  # every namespace


def test_the_operator_deployment(renders: Renders) -> None:
    objects = renders(**ON)
    deployment = find(objects, "Deployment", OPERATOR)
    assert deployment["metadata"]["namespace"] == NAMESPACE
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == OPERATOR
    container = operator_container(objects)
    assert container["image"] == "ghcr.io/heron-project/heron-operator:0.1.0"
    assert container["command"] == ["python3", "-m", "heron_operator"]
    assert "args" not in container
    assert container["ports"] == [
        {"name": "health", "containerPort": 8080, "protocol": "TCP"},
        {"name": "metrics", "containerPort": 8081, "protocol": "TCP"},
    ]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["resources"] == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"memory": "512Mi"},
    }
    assert env_of(container) == {
        "HERON_OPERATOR_NAMESPACES": json.dumps([NAMESPACE]),
        "HERON_OPERATOR_STANDALONE": "false",
        "HERON_OPERATOR_PEERING_NAME": PEERING,
        "HERON_OPERATOR_PEERING_LIFETIME_S": "60",
        "POD_ID": {"fieldRef": {"fieldPath": "metadata.name"}},  # kopf's peer identity
        "HERON_OPERATOR_HEALTH_PORT": "8080",
        "HERON_OPERATOR_METRICS_PORT": "8081",
        "HERON_OPERATOR_LOG_LEVEL": "info",
        "HERON_OPERATOR_IMAGE_REGISTRY": "ghcr.io/heron-project",
        "HERON_OPERATOR_IMAGE_TAG": "0.1.0",
        "HERON_OPERATOR_TRAINING_IMAGE": "ghcr.io/heron-project/heron-training:0.1.0",
        "HERON_OPERATOR_ENGINE_IMAGE": "ghcr.io/heron-project/heron-engine:0.1.0",
        "HERON_OPERATOR_IMAGE_PULL_POLICY": "IfNotPresent",
        "HERON_OPERATOR_IMAGE_PULL_SECRETS": "[]",
        "HERON_OPERATOR_RUN_AS_USER": "10001",
        "HERON_OPERATOR_RUN_AS_GROUP": "10001",
        "HERON_OPERATOR_FS_GROUP": "10001",
        # The pipelines' gRPC APIs: TLS trusting the release's CA, the bearer token.
        "HERON_OPERATOR_PIPELINE_TLS_CA_FILE": "/etc/heron/grpc-ca/ca.crt",
        "HERON_OPERATOR_PIPELINE_TOKEN": {
            "secretKeyRef": {"name": "heron-grpc-token", "key": "token"}
        },
    }  # no HERON_OPERATOR_PROMETHEUS_URL: none given
    sa = find(objects, "ServiceAccount", OPERATOR)
    assert sa["automountServiceAccountToken"] is False


def test_the_operator_reads_the_settings_the_chart_gives(renders: Renders) -> None:
    """Every HERON_OPERATOR_* variable the chart sets is one heron_operator.settings reads, and
    it accepts the chart's values (a variable it did not read would be a setting dropped)."""
    settings = pytest.importorskip("heron_operator.settings", reason="no heron_operator.settings")
    known = set(settings.OperatorSettings.model_fields)
    env = {k: v for k, v in env_of(operator_container(renders(**ON))).items() if isinstance(v, str)}
    prefix: str = settings.ENV_PREFIX
    given = {k.removeprefix(prefix).lower(): v for k, v in env.items() if k.startswith(prefix)}
    assert set(given) <= known, set(given) - known
    read = settings.OperatorSettings(**given)
    assert read.namespaces == [NAMESPACE]
    assert read.standalone is False
    assert read.peering_name == PEERING
    assert read.engine_job_image == "ghcr.io/heron-project/heron-engine:0.1.0"
    assert read.prometheus_url is None  # none given: the gates are not measured
    url = "http://prometheus-operated.monitoring:9090"
    env = env_of(operator_container(renders(**ON, **{"operator.prometheusUrl": url})))
    assert (
        settings.OperatorSettings(prometheus_url=env[prefix + "PROMETHEUS_URL"]).prometheus_url
        == url
    )


def test_the_operator_pod_is_restricted(renders: Renders) -> None:
    """The "restricted" Pod Security Standard, a read-only root; its token, and only its."""
    objects = renders(**ON)
    pod = find(objects, "Deployment", OPERATOR)["spec"]["template"]["spec"]
    security = pod["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] != 0
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(key), key
    assert not [v for v in pod.get("volumes", []) if "hostPath" in v]
    assert pod["automountServiceAccountToken"] is True
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["readOnlyRootFilesystem"] is True
    assert sc.get("privileged") is not True
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/tmp", "/etc/heron/grpc-ca"}
    # Every other pod of the chart keeps its token unmounted.
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet") and obj["metadata"]["name"] != OPERATOR:
            assert obj["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


def test_standalone_without_leader_election(renders: Renders) -> None:
    objects = renders(**ON, **{"operator.leaderElection.enabled": "false"})
    assert peerings(objects) == []
    deployment = find(objects, "Deployment", OPERATOR)
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    env = env_of(operator_container(objects))
    assert env["HERON_OPERATOR_STANDALONE"] == "true"
    assert "HERON_OPERATOR_PEERING_NAME" not in env


def test_settings_reach_the_operator(renders: Renders) -> None:
    objects = renders(
        **ON,
        **{
            "operator.replicas": "2",
            "operator.logLevel": "debug",
            "operator.healthPort": "9090",
            "operator.leaderElection.peeringName": "vision-operator",
            "operator.leaderElection.lifetimeSeconds": "30",
            "operator.jobs.engineImage": "registry.local/engine:1",
            "image.tag": "1.2.3",
            "image.pullSecrets[0].name": "registry",
            "triton.enabled": "true",
        },
    )
    assert find(objects, "Deployment", OPERATOR)["spec"]["replicas"] == 2
    assert peerings(objects) == [("KopfPeering", NAMESPACE, "vision-operator")]
    container = operator_container(objects)
    assert container["ports"][0]["containerPort"] == 9090
    assert container["image"] == "ghcr.io/heron-project/heron-operator:1.2.3"
    env = env_of(container)
    assert env["HERON_OPERATOR_LOG_LEVEL"] == "debug"
    assert env["HERON_OPERATOR_HEALTH_PORT"] == "9090"
    assert env["HERON_OPERATOR_PEERING_NAME"] == "vision-operator"
    assert env["HERON_OPERATOR_PEERING_LIFETIME_S"] == "30"
    assert env["HERON_OPERATOR_IMAGE_TAG"] == "1.2.3"
    assert env["HERON_OPERATOR_ENGINE_IMAGE"] == "registry.local/engine:1"
    assert env["HERON_OPERATOR_TRAINING_IMAGE"] == "ghcr.io/heron-project/heron-training:1.2.3"
    assert env["HERON_OPERATOR_IMAGE_PULL_SECRETS"] == '["registry"]'
    assert "HERON_OPERATOR_PROMETHEUS_URL" not in env  # none given: gates not measured
    url = "http://prometheus-operated.monitoring:9090"
    given = operator_container(renders(**ON, **{"operator.prometheusUrl": url}))
    assert env_of(given)["HERON_OPERATOR_PROMETHEUS_URL"] == url
    rules = find(objects, "ClusterRole", CLUSTER_NAME)["rules"]
    assert rules[-1]["resourceNames"] == ["vision-operator"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"operator.enabled": "yes"}, "at '/operator/enabled'"),
        ({"operator.logLevel": "trace"}, "at '/operator/logLevel'"),
        ({"operator.watch.namespaces": "{Bad_NS}"}, "at '/operator/watch/namespaces/0'"),
        (
            {"operator.replicas": "2", "operator.leaderElection.enabled": "false"},
            "at '/operator/replicas'",
        ),
        (
            {"operator.leaderElection.peeringName": "Heron"},
            "at '/operator/leaderElection/peeringName'",
        ),
        (
            {"operator.leaderElection.lifetimeSeconds": "1"},
            "at '/operator/leaderElection/lifetimeSeconds'",
        ),
        ({"operator.prometheusUrl": "prometheus:9090"}, "at '/operator/prometheusUrl'"),
        ({"operator.unknown": "1"}, "additional properties 'unknown' not allowed"),
    ],
)
def test_bad_operator_values_are_refused_naming_the_field(
    helm: Path, chart_dir: Path, values: dict[str, str], message: str
) -> None:
    with pytest.raises(HelmError) as refused:
        render(chart_dir, set_values={**ON, **values})
    assert message in refused.value.stderr


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_lint_strict_passes_with_the_operator(
    helm: Path, chart_dir: Path, tmp_path: Path, kube_version: str
) -> None:
    for values in (
        {"operator": {"enabled": True}},
        {"operator": {"enabled": True, "watch": {"allNamespaces": True, "namespaces": []}}},
        {"operator": {"enabled": True, "leaderElection": {"enabled": False}}},
    ):
        path = values_file(tmp_path, values)
        assert "0 chart(s) failed" in lint(chart_dir, values=[path], kube_version=kube_version)


# --- docs/operator.md ---------------------------------------------------------------------------


def test_the_docs_describe_every_field(crds: Objects) -> None:
    page = DOC.read_text()
    assert "## How the operator works" in page
    assert "```mermaid" in page
    for state in STATUS_PHASES["EngineRollout"]:
        assert state in page.split("```mermaid", 1)[1].split("```", 1)[0], state
    for crd in crds:
        assert f"## {crd['spec']['names']['kind']}" in page
        root = root_schema(crd)
        for part in ("spec", "status"):
            for field in root["properties"][part]["properties"]:
                if field != "kopf":
                    assert f"`{field}" in page, (crd["spec"]["names"]["kind"], part, field)
    for name in ("trainingrun.yaml", "enginebuild.yaml", "enginerollout.yaml"):
        assert f"charts/heron/examples/{name}" in page


def test_the_docs_rbac_table_is_the_charts(renders: Renders) -> None:
    page = DOC.read_text()
    section = page.split("## RBAC", 1)[1].split("\n## ", 1)[0]
    for _, rule in all_rules(renders(**ON)):
        for resource in rule["resources"]:
            assert f"`{resource}`" in section, resource
        for verb in rule["verbs"]:
            assert verb in section, verb
