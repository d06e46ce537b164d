"""The chart tests' tools: strict schema validation (tests/support/kube_schemas.py) on
hand-written objects, and the real helm (tests/support/helm.py) on a throwaway chart."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO
from tests.support import helm as helm_cli
from tests.support.kube_schemas import (
    UnknownKindError,
    UnsupportedVersionError,
    crd_schemas_from_crds,
    supported_versions,
    validate,
)

KUBE_VERSIONS = ["1.29", "1.33"]
CONTAINER = "spec.template.spec.containers[0]"


def deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "ingest", "labels": {"app.kubernetes.io/name": "heron"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "ingest"}},
            "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": "ingest"}},
                "spec": {
                    "containers": [
                        {
                            "name": "ingest",
                            "image": "heron/ingest:0.1.0",
                            "ports": [{"name": "metrics", "containerPort": 9100}],
                            "resources": {"limits": {"cpu": 2, "memory": "1Gi"}},
                            "readinessProbe": {"httpGet": {"path": "/healthz", "port": "metrics"}},
                        }
                    ]
                },
            },
        },
    }


def pipeline_crd() -> dict[str, Any]:
    spec_schema = {
        "type": "object",
        "required": ["model"],
        "properties": {
            "model": {"type": "string"},
            "replicas": {"type": "integer", "format": "int32", "minimum": 0},
            "port": {"x-kubernetes-int-or-string": True},
            "options": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "note": {"type": "string", "nullable": True},
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "pipelines.heron.example.com"},
        "spec": {
            "group": "heron.example.com",
            "scope": "Namespaced",
            "names": {"kind": "Pipeline", "plural": "pipelines", "singular": "pipeline"},
            "versions": [
                {
                    "name": "v1alpha1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": spec_schema,
                                "status": {
                                    "type": "object",
                                    "x-kubernetes-preserve-unknown-fields": True,
                                },
                            },
                        }
                    },
                }
            ],
        },
    }


def pipeline(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "heron.example.com/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "faces", "namespace": "heron"},
        "spec": spec,
    }


# --- kube_schemas --------------------------------------------------------------------------------


def test_bundled_versions_cover_the_supported_range() -> None:
    versions = supported_versions()
    assert set(KUBE_VERSIONS) <= set(versions)
    assert versions == sorted(versions, key=lambda v: tuple(map(int, v.split("."))))


@pytest.mark.parametrize("kube_version", [*KUBE_VERSIONS, "v1.33.0", "1.29.4"])
def test_valid_deployment_passes(kube_version: str) -> None:
    assert validate(deployment(), kube_version) == []


@pytest.mark.parametrize(
    ("where", "path"),
    [
        ((), "foo"),
        (("metadata",), "metadata.foo"),
        (("spec",), "spec.foo"),
        (("spec", "template", "spec"), "spec.template.spec.foo"),
        (("spec", "template", "spec", "containers", 0), f"{CONTAINER}.foo"),
        (
            ("spec", "template", "spec", "containers", 0, "readinessProbe", "httpGet"),
            f"{CONTAINER}.readinessProbe.httpGet.foo",
        ),
    ],
)
@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_unknown_field_is_reported_at_any_depth(
    where: tuple[str | int, ...], path: str, kube_version: str
) -> None:
    obj = deployment()
    node: Any = obj
    for key in where:
        node = node[key]
    node["foo"] = 1
    assert validate(obj, kube_version) == [f"{path}: unknown field"]


def test_wrong_type_is_reported() -> None:
    obj = deployment()
    obj["spec"]["replicas"] = "three"
    obj["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "9100"
    obj["metadata"]["labels"]["app.kubernetes.io/name"] = 7
    assert validate(obj, "1.33") == [
        'metadata.labels["app.kubernetes.io/name"]: expected string, got integer 7',
        'spec.replicas: expected integer, got string "three"',
        f'{CONTAINER}.ports[0].containerPort: expected integer, got string "9100"',
    ]


def test_int_or_string_and_quantity_take_either_but_nothing_else() -> None:
    obj = deployment()
    obj["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = 1.5
    obj["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = [2]
    assert validate(obj, "1.33") == [
        "spec.strategy.rollingUpdate.maxSurge: expected integer or string, got number 1.5",
        f"{CONTAINER}.resources.limits.cpu: expected number or string, got array [2]",
    ]


def test_missing_required_field_is_reported() -> None:
    obj = deployment()
    del obj["spec"]["template"]["spec"]["containers"][0]["name"]
    del obj["spec"]["selector"]
    assert validate(obj, "1.29") == [
        "spec.selector: required field is missing",
        f"{CONTAINER}.name: required field is missing",
    ]


def test_every_error_is_reported_not_only_the_first() -> None:
    obj = deployment()
    container = obj["spec"]["template"]["spec"]["containers"][0]
    del container["name"]
    container["imagePullPolicy"] = 3
    container["envv"] = []
    obj["spec"]["replicas"] = None  # null is allowed: not an error
    obj["spec"]["paused"] = "no"
    obj["metadata"]["labelz"] = {}
    assert validate(obj, "1.33") == [
        "metadata.labelz: unknown field",
        'spec.paused: expected boolean, got string "no"',
        f"{CONTAINER}.envv: unknown field",
        f"{CONTAINER}.imagePullPolicy: expected string, got integer 3",
        f"{CONTAINER}.name: required field is missing",
    ]


def test_api_version_not_served_is_reported() -> None:
    pdb = {
        "apiVersion": "policy/v1beta1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "ingest"},
        "spec": {"minAvailable": 1},
    }
    assert validate(pdb, "1.33") == [
        "(root): policy/v1beta1 PodDisruptionBudget is not served by Kubernetes 1.33"
        " (removed, not yet added, or misspelt)"
    ]
    assert validate({**pdb, "apiVersion": "policy/v1"}, "1.33") == []


def test_unsupported_version_is_refused() -> None:
    with pytest.raises(UnsupportedVersionError, match=r"1\.99.*supported are 1\.25"):
        validate(deployment(), "1.99")


def test_custom_resource_without_crd_schema_raises() -> None:
    monitor = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "heron"},
        "spec": {"endpoints": [{"port": "metrics"}]},
    }
    with pytest.raises(UnknownKindError, match=r"monitoring\.coreos\.com/v1 ServiceMonitor"):
        validate(monitor, "1.33")
    with pytest.raises(UnknownKindError, match="custom resource"):
        validate(pipeline(model="m"), "1.33", crd_schemas={})


def test_custom_resource_validates_against_its_crd_schema() -> None:
    crd = pipeline_crd()
    assert validate(crd, "1.33") == []  # the CRD itself is a built-in object
    schemas = crd_schemas_from_crds([deployment(), crd])
    assert list(schemas) == [("heron.example.com/v1alpha1", "Pipeline")]

    good = pipeline(model="m", replicas=2, port="http", options={"any": {"thing": 1}}, note=None)
    assert validate(good, "1.33", crd_schemas=schemas) == []
    bad = pipeline(replicas=-1, port=1.5, typo=True, note=3)
    bad["metadata"]["labelz"] = {}
    assert validate(bad, "1.29", crd_schemas=schemas) == [
        "metadata.labelz: unknown field",
        "spec.model: required field is missing",
        "spec.note: expected string, got integer 3",
        "spec.port: expected integer or string, got number 1.5",
        "spec.replicas: -1 is less than the minimum of 0",
        "spec.typo: unknown field",
    ]


def test_validate_does_not_modify_its_input() -> None:
    obj = deployment()
    obj["spec"]["foo"] = 1
    before = copy.deepcopy(obj)
    validate(obj, "1.33")
    assert obj == before


# --- helm ----------------------------------------------------------------------------------------

DEPLOYMENT_TEMPLATE = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
  namespace: {{ .Release.Namespace }}
  annotations:
    released: 2024-01-01
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: {{ .Values.image | quote }}
          {{- with .Values.banner }}
          args: [{{ . | quote }}]
          {{- end }}
"""
MONITOR_TEMPLATE = """\
{{- if .Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor" }}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ .Release.Name }}-web
spec:
  selector:
    matchLabels: {app: web}
  endpoints: [{port: metrics}]
{{- end }}
"""
VALUES_SCHEMA = {
    "$schema": "https://json-schema.org/draft-07/schema#",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "replicas": {"type": "integer", "minimum": 0},
        "image": {"type": "string"},
        "banner": {"type": "string"},
    },
}


@pytest.fixture
def tiny_chart(tmp_path: Path, helm: Path) -> Path:
    chart = tmp_path / "tiny"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: tiny\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("replicas: 1\nimage: nginx:1.27\nbanner: ''\n")
    (chart / "values.schema.json").write_text(json.dumps(VALUES_SCHEMA))
    (chart / "templates" / "deployment.yaml").write_text(DEPLOYMENT_TEMPLATE)
    (chart / "templates" / "servicemonitor.yaml").write_text(MONITOR_TEMPLATE)
    return chart


def test_helm_binary_is_the_venvs(helm: Path) -> None:
    assert helm == helm_cli.helm_binary()
    assert helm.is_file()


def test_template_returns_the_rendered_objects(tiny_chart: Path, tmp_path: Path) -> None:
    objects = helm_cli.template(tiny_chart)
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [("Deployment", "heron-web")]
    web = objects[0]
    assert web["metadata"]["namespace"] == "heron"
    assert web["metadata"]["annotations"] == {"released": "2024-01-01"}  # a string, as in k8s
    assert web["spec"]["replicas"] == 1
    assert validate(web, "1.33") == []

    overrides = tmp_path / "prod.yaml"
    overrides.write_text("replicas: 3\n")
    banner = tmp_path / "banner.txt"
    banner.write_text("hello")
    (web,) = helm_cli.template(
        tiny_chart,
        release="r",
        namespace="vision",
        values=[overrides],
        set_values={"image": "heron/web:2"},
        set_files={"banner": banner},
    )
    assert web["metadata"] == {
        "name": "r-web",
        "namespace": "vision",
        "annotations": {"released": "2024-01-01"},
    }
    assert web["spec"]["replicas"] == 3
    assert web["spec"]["template"]["spec"]["containers"][0]["image"] == "heron/web:2"
    assert web["spec"]["template"]["spec"]["containers"][0]["args"] == ["hello"]


def test_api_versions_switch_capability_gated_templates_on(tiny_chart: Path) -> None:
    kinds = [o["kind"] for o in helm_cli.template(tiny_chart)]
    assert "ServiceMonitor" not in kinds
    gated = helm_cli.template(tiny_chart, api_versions=["monitoring.coreos.com/v1/ServiceMonitor"])
    assert [o["kind"] for o in gated] == ["Deployment", "ServiceMonitor"]


def test_values_schema_violation_raises_naming_the_field(tiny_chart: Path) -> None:
    with pytest.raises(helm_cli.HelmError) as caught:
        helm_cli.template(tiny_chart, set_values={"replicas": "many"})
    error = caught.value
    assert error.returncode != 0
    assert "/replicas" in error.stderr
    assert error.command[1:3] == ["template", "heron"]
    with pytest.raises(helm_cli.HelmError, match="replcas"):
        helm_cli.template(tiny_chart, set_values={"replcas": "2"})


def test_lint_strict_fails_on_a_warning(tiny_chart: Path) -> None:
    assert "0 chart(s) failed" in helm_cli.lint(tiny_chart)
    (tiny_chart / "templates" / "pdb.yaml").write_text(
        "apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata:\n  name: web\n"
        "spec:\n  minAvailable: 1\n"
    )
    relaxed = helm_cli.lint(tiny_chart, strict=False)
    assert "[WARNING] templates/pdb.yaml" in relaxed
    with pytest.raises(helm_cli.HelmError) as caught:
        helm_cli.lint(tiny_chart, strict=True)
    assert "policy/v1beta1 PodDisruptionBudget is deprecated" in str(caught.value)
    assert "1 chart(s) failed" in caught.value.stderr


def test_missing_chart_raises_helm_error(tmp_path: Path, helm: Path) -> None:
    with pytest.raises(helm_cli.HelmError, match="no-such-chart"):
        helm_cli.template(tmp_path / "no-such-chart")


def test_manifests_refuse_a_key_given_twice() -> None:
    text = "---\n# Source: x\n---\napiVersion: v1\nkind: ConfigMap\ndata: {a: '1'}\ndata: {}\n"
    with pytest.raises(yaml.YAMLError, match="duplicate key 'data'"):
        helm_cli.load_manifests(text)
    merged = "base: &b {a: 1}\nkind: X\nx:\n  <<: *b\n  a: 2\n"
    assert helm_cli.load_manifests(merged) == [{"base": {"a": 1}, "kind": "X", "x": {"a": 2}}]


def test_the_docs_snippet_runs() -> None:
    page = REPO / "docs" / "development.md"
    section = page.read_text().split("## Chart tools", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    exec(compile(code, str(page), "exec"), {})
