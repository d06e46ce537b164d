"""The chart's infrastructure: its Redis, Triton, the Prometheus Operator objects, NOTES.txt and
the `helm test` hook, rendered by the real helm and read back (docs/deploy.md).

Renders are shared by the module, one per scenario and Kubernetes version (helm template costs
~0.2 s): the face-mask pipeline on the chart's Redis (ci/default-values.yaml), on an external
Redis (ci/external-redis-values.yaml, by Secret or by URL), on a Redis password of one's own,
with the chart's Triton on GPUs (ci/gpu-triton-values.yaml), and with everything on. promtool
(Debian's prometheus package) checks and unit-tests the alert rules; without it those skip.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import pytest
import yaml
from heron.core.plan.deploy import helm_values
from heron.core.plan.options import PlanOptions

from tests.conftest import REPO
from tests.support.helm import HelmError, install_notes, lint, template
from tests.support.kube_schemas import validate

Objects = list[dict[str, Any]]

CI = REPO / "charts" / "heron" / "ci"
RULES_FILE = REPO / "charts" / "heron" / "rules" / "heron.rules.yaml"
FIXTURES = REPO / "tests" / "fixtures" / "charts"
RELEASE = "heron"  # contains the chart's name: objects are "heron-<component>"
NAMESPACE = "video"
KUBE_VERSIONS = ["1.29.0", "1.33.0"]
MONITORING_API = "monitoring.coreos.com/v1"
REDIS = "heron-redis"
TRITON = "heron-triton"
EXTERNAL_URL = "redis://:ext-s3cret@redis.example.internal:6379/0"
# The services the PodMonitor scrapes, in order, and the port names the pipelines give them.
METRICS_PORTS = {
    "ingest": "metrics-ingest",
    "streammux": "metrics-mux",
    "inference": "metrics-infer",
    "tracker": "metrics-tracker",
    "overlay": "metrics-overlay",
    "control": "metrics-control",
}
# Each scenario: values files (names in charts/heron/ci, or overrides written to a temp file),
# and whether the cluster serves the Prometheus Operator's API.
SCENARIOS: dict[str, tuple[list[str | dict[str, Any]], bool]] = {
    "default": (["default-values.yaml"], False),
    "monitoring": (["default-values.yaml"], True),
    "external-secret": (["external-redis-values.yaml"], False),
    "external-url": (
        [
            "external-redis-values.yaml",
            {"redis": {"external": {"existingSecret": "", "url": EXTERNAL_URL}}},
        ],
        False,
    ),
    "own-password": (
        [
            "default-values.yaml",
            {
                "redis": {
                    "auth": {"existingSecret": "my-redis", "existingSecretKey": "pw"},
                    "metrics": {"enabled": True},
                    "persistence": {"enabled": False},
                }
            },
        ],
        True,
    ),
    "gpu-triton": (["gpu-triton-values.yaml"], True),
    "everything": (["gpu-triton-values.yaml", {"redis": {"metrics": {"enabled": True}}}], True),
}


# --- renders, shared -------------------------------------------------------------------------


class Renders:
    """helm template of each scenario, each Kubernetes version, made once when first asked."""

    def __init__(self, chart: Path, folder: Path) -> None:
        self.chart = chart
        self.folder = folder
        self.done: dict[tuple[str, str], Objects] = {}

    def values(self, scenario: str) -> list[Path]:
        paths = []
        for index, item in enumerate(SCENARIOS[scenario][0]):
            if isinstance(item, str):
                paths.append(CI / item)
            else:
                path = self.folder / f"{scenario}-{index}.yaml"
                path.write_text(yaml.safe_dump(item))
                paths.append(path)
        return paths

    def __call__(self, scenario: str, kube_version: str = "1.33.0") -> Objects:
        if (scenario, kube_version) not in self.done:
            self.done[scenario, kube_version] = render(
                self.chart,
                *self.values(scenario),
                api_versions=[MONITORING_API] if SCENARIOS[scenario][1] else [],
                kube_version=kube_version,
            )
        return self.done[scenario, kube_version]


def render(chart: Path, *values: Path, **kwargs: Any) -> Objects:
    return template(chart, release=RELEASE, namespace=NAMESPACE, values=list(values), **kwargs)


@pytest.fixture(scope="module")
def renders(helm: Path, chart_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Renders:
    return Renders(chart_dir, tmp_path_factory.mktemp("infra-values"))


def find(objects: Objects, kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name}: {len(found)} rendered"
    return found[0]


def component(obj: dict[str, Any]) -> str:
    label: str = obj["metadata"].get("labels", {}).get("app.kubernetes.io/component", "")
    return label


def pod_specs(objects: Objects) -> Iterator[tuple[str, dict[str, Any]]]:
    """(kind/name, pod spec) of every workload and bare pod."""
    for obj in objects:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield name, obj["spec"]["template"]["spec"]
        elif obj["kind"] == "Pod":
            yield name, obj["spec"]


def heron_containers(objects: Objects) -> dict[str, dict[str, Any]]:
    """The pipelines' Heron containers (image heron-<role>), by pod/container; not the hook."""
    found = {}
    for name, spec in pod_specs(objects):
        if name.startswith("Pod/"):
            continue
        for c in spec["containers"]:
            if "/heron-" in c["image"]:
                found[f"{name}/{c['name']}"] = c
    return found


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def redis_pod(objects: Objects) -> dict[str, Any]:
    spec: dict[str, Any] = find(objects, "StatefulSet", REDIS)["spec"]["template"]["spec"]
    return spec


def monitoring_objects(objects: Objects) -> list[str]:
    return sorted(
        f"{o['kind']}/{o['metadata']['name']}"
        for o in objects
        if o["apiVersion"].startswith("monitoring.coreos.com/")
    )


# --- every object is valid Kubernetes ---------------------------------------------------------


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_built_in_object_is_valid(renders: Renders, scenario: str, kube_version: str) -> None:
    objects = renders(scenario, kube_version)
    errors = {
        f"{o['kind']}/{o['metadata']['name']}": validate(o, kube_version)
        for o in objects
        if not o["apiVersion"].startswith("monitoring.coreos.com/")
    }
    assert {name: e for name, e in errors.items() if e} == {}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_pod_is_restricted(renders: Renders, scenario: str) -> None:
    """The "restricted" Pod Security Standard, and a read-only root filesystem, everywhere."""
    for name, spec in pod_specs(renders(scenario)):
        pod = spec.get("securityContext", {})
        assert pod.get("runAsNonRoot") is True, name
        assert pod.get("seccompProfile") == {"type": "RuntimeDefault"}, name
        assert pod.get("runAsUser", 1) != 0, name
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(key), (name, key)
        assert not [v for v in spec.get("volumes", []) if "hostPath" in v], name
        assert spec.get("automountServiceAccountToken") is False, name
        for c in spec.get("initContainers", []) + spec["containers"]:
            where = f"{name}/{c['name']}"
            sc = c.get("securityContext", {})
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("capabilities") == {"drop": ["ALL"]}, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("privileged") is not True, where
            assert sc.get("runAsUser", 1) != 0, where
            assert sc.get("seccompProfile", {"type": "RuntimeDefault"}) == {
                "type": "RuntimeDefault"
            }, where
            for port in c.get("ports", []):
                assert len(port.get("name", "")) <= 15, (where, port)  # an IANA service name
                assert "hostPort" not in port, where


# --- Redis -----------------------------------------------------------------------------------


def test_redis_is_one_pod_with_its_append_only_file_on_a_claim(renders: Renders) -> None:
    objects = renders("default")
    sts = find(objects, "StatefulSet", REDIS)
    assert sts["spec"]["replicas"] == 1
    headless = find(objects, "Service", f"{REDIS}-headless")
    assert sts["spec"]["serviceName"] == f"{REDIS}-headless"
    assert headless["spec"]["clusterIP"] == "None"
    client = find(objects, "Service", REDIS)
    assert [(p["name"], p["port"]) for p in client["spec"]["ports"]] == [("redis", 6379)]

    conf = find(objects, "ConfigMap", REDIS)["data"]["redis.conf"].splitlines()
    for line in ("appendonly yes", "appendfsync everysec", "dir /data", "port 6379"):
        assert line in conf
    assert "maxmemory-policy noeviction" in conf
    assert not [line for line in conf if "requirepass" in line and not line.startswith("#")]

    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "8Gi"
    assert "storageClassName" not in claim["spec"]  # the cluster's default
    (redis,) = redis_pod(objects)["containers"]
    mounts = {m["mountPath"]: m["name"] for m in redis["volumeMounts"]}
    assert mounts == {"/data": "data", "/etc/redis": "config", "/tmp": "tmp"}
    assert redis["image"] == "docker.io/library/redis:7.4.11-alpine"
    assert redis_pod(objects)["securityContext"]["runAsUser"] == 999
    assert redis["resources"]["limits"]["memory"] == "2Gi"


def test_redis_storage_and_fsync_are_values(chart_dir: Path, helm: Path) -> None:
    objects = render(
        chart_dir,
        CI / "default-values.yaml",
        set_values={
            "redis.persistence.storageClassName": "fast-ssd",
            "redis.persistence.size": "20Gi",
            "redis.persistence.appendfsync": "always",
            "redis.port": "6380",
        },
    )
    sts = find(objects, "StatefulSet", REDIS)
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["storageClassName"] == "fast-ssd"
    assert claim["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert "appendfsync always" in find(objects, "ConfigMap", REDIS)["data"]["redis.conf"]
    assert find(objects, "Service", REDIS)["spec"]["ports"][0]["port"] == 6380
    (redis,) = sts["spec"]["template"]["spec"]["containers"]
    assert redis["ports"][0]["containerPort"] == 6380
    assert "-p 6380" in " ".join(redis["readinessProbe"]["exec"]["command"])
    urls = {env_of(c)["HERON_REDIS_URL"]["value"] for c in heron_containers(objects).values()}
    assert urls == {f"redis://:$(HERON_REDIS_PASSWORD)@{REDIS}:6380/0"}


def test_without_persistence_redis_uses_an_empty_dir(renders: Renders) -> None:
    sts = find(renders("own-password"), "StatefulSet", REDIS)
    assert "volumeClaimTemplates" not in sts["spec"]
    volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
    assert volumes["data"] == {"name": "data", "emptyDir": {}}


def test_the_redis_password_is_only_in_its_secret(renders: Renders) -> None:
    objects = renders("default")
    secret = find(objects, "Secret", REDIS)
    encoded = secret["data"]["password"]
    password = base64.b64decode(encoded).decode()
    assert re.fullmatch(r"[A-Za-z0-9]{32}", password)

    others = yaml.safe_dump_all([o for o in objects if o is not secret])
    assert password not in others
    assert encoded not in others

    by_secret = {"name": REDIS, "key": "password"}
    (redis,) = redis_pod(objects)["containers"]
    assert env_of(redis)["REDISCLI_AUTH"]["valueFrom"]["secretKeyRef"] == by_secret
    pipelines = heron_containers(objects)
    assert len(pipelines) == 6  # five streaming services and control
    for name, c in pipelines.items():
        env = env_of(c)
        assert env["HERON_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == by_secret, name
        assert env["HERON_REDIS_URL"]["value"] == (
            f"redis://:$(HERON_REDIS_PASSWORD)@{REDIS}:6379/0"
        ), name
    # Any env var that smells of a password comes from a Secret.
    for name, spec in pod_specs(objects):
        for c in spec["containers"]:
            for e in c.get("env", []):
                if re.search("PASSWORD|AUTH", e["name"]):
                    assert "secretKeyRef" in e.get("valueFrom", {}), (name, e)


def test_redis_reads_its_password_at_start_not_from_its_spec(renders: Renders) -> None:
    (redis,) = redis_pod(renders("default"))["containers"]
    script = redis["args"][0]
    assert redis["command"] == ["sh", "-c"]
    assert "redis-server /etc/redis/redis.conf -" in script  # more config on standard input
    assert 'requirepass "$pw"' in script
    assert '"$REDISCLI_AUTH"' in script
    probes = [redis[p]["exec"]["command"] for p in ("startupProbe", "livenessProbe")]
    assert all("redis-cli -h 127.0.0.1 -p 6379 ping" in " ".join(p) for p in probes)
    assert "PONG" in " ".join(redis["readinessProbe"]["exec"]["command"])


def test_redis_start_script_and_probes_work(renders: Renders, tmp_path: Path) -> None:
    """The rendered script starts a real redis-server (here under the system's sh; the image's
    is busybox ash) whose password is the Secret's, quotes and backslashes included; the
    rendered probes pass with it and fail without."""
    server = shutil.which("redis-server")
    if server is None or shutil.which("redis-cli") is None:
        pytest.skip("redis-server/redis-cli not installed (apt-get install redis-server)")
    (redis,) = redis_pod(renders("default"))["containers"]
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    conf = find(renders("default"), "ConfigMap", REDIS)["data"]["redis.conf"]
    conf = conf.replace("dir /data", f"dir {tmp_path}").replace("port 6379", f"port {port}")
    conf = conf.replace("bind * -::*", "bind 127.0.0.1")
    (tmp_path / "redis.conf").write_text(conf)
    script = redis["args"][0].replace("/etc/redis/redis.conf", str(tmp_path / "redis.conf"))
    password = 'p"a\\ss$word'
    env = {**os.environ, "REDISCLI_AUTH": password}
    process = subprocess.Popen(["sh", "-c", script], env=env, stdout=subprocess.DEVNULL)
    try:

        def probe(kind: str, auth: str) -> int:
            command = [c.replace("-p 6379", f"-p {port}") for c in redis[kind]["exec"]["command"]]
            done = subprocess.run(
                command, env={**os.environ, "REDISCLI_AUTH": auth}, capture_output=True, check=False
            )
            return done.returncode

        for _ in range(100):
            if probe("readinessProbe", password) == 0:
                break
            assert process.poll() is None, "redis-server exited"
            time.sleep(0.05)
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert probe(kind, password) == 0, kind
            assert probe(kind, "wrong") != 0, kind
        # The password is on no command line.
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes()
        assert password.encode() not in cmdline
        assert (tmp_path / "appendonlydir").is_dir()
    finally:
        subprocess.run(
            ["redis-cli", "-p", str(port), "shutdown", "nosave"],
            env=env,
            capture_output=True,
            check=False,
        )
        process.wait(timeout=10)


def test_without_a_cluster_each_render_draws_a_new_password(renders: Renders) -> None:
    """`lookup` finds no live Secret offline (helm template): a random one each time. On a
    cluster the existing Secret's password is kept (docs/deploy.md, "Redis")."""
    first, second = (find(renders("default", v), "Secret", REDIS) for v in KUBE_VERSIONS)
    assert first["data"]["password"] != second["data"]["password"]


def test_a_password_secret_of_ones_own(renders: Renders) -> None:
    objects = renders("own-password")
    assert [o for o in objects if o["kind"] == "Secret" and component(o) == "redis"] == []
    by_secret = {"name": "my-redis", "key": "pw"}
    containers = {c["name"]: c for c in redis_pod(objects)["containers"]}
    assert env_of(containers["redis"])["REDISCLI_AUTH"]["valueFrom"]["secretKeyRef"] == by_secret
    exporter = env_of(containers["metrics"])
    assert exporter["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == by_secret
    for name, c in heron_containers(objects).items():
        assert env_of(c)["HERON_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == by_secret, name


def test_redis_disruption_budget_is_switchable(
    chart_dir: Path, helm: Path, renders: Renders
) -> None:
    pdb = find(renders("default"), "PodDisruptionBudget", REDIS)
    assert pdb["spec"]["maxUnavailable"] == 0
    assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "redis"
    off = render(chart_dir, CI / "default-values.yaml", set_values={"redis.pdb.enabled": "false"})
    assert [o for o in off if o["kind"] == "PodDisruptionBudget"] == []


@pytest.mark.parametrize("scenario", ["external-secret", "external-url"])
def test_an_external_redis_renders_no_redis(renders: Renders, scenario: str) -> None:
    objects = renders(scenario)
    assert [o["metadata"]["name"] for o in objects if component(o) == "redis"] == []
    assert [o for o in objects if o["kind"] == "StatefulSet"] == []
    # The only Secrets are the gRPC APIs' (tests/charts/test_security.py), none of Redis.
    assert {component(o) for o in objects if o["kind"] == "Secret"} == {"grpc"}
    pipelines = heron_containers(objects)
    assert pipelines
    for name, c in pipelines.items():
        env = env_of(c)
        assert "HERON_REDIS_PASSWORD" not in env, name
        if scenario == "external-url":
            assert env["HERON_REDIS_URL"] == {"name": "HERON_REDIS_URL", "value": EXTERNAL_URL}
        else:
            assert env["HERON_REDIS_URL"]["valueFrom"]["secretKeyRef"] == {
                "name": "heron-redis-url",
                "key": "url",
            }, name


# --- Triton ----------------------------------------------------------------------------------


def test_triton_only_when_enabled(renders: Renders) -> None:
    assert [o for o in renders("default") if component(o) == "triton"] == []
    made = sorted(
        f"{o['kind']}/{o['metadata']['name']}"
        for o in renders("gpu-triton")
        if component(o) == "triton"
    )
    assert made == [
        f"Deployment/{TRITON}",
        f"NetworkPolicy/{TRITON}",
        f"PersistentVolumeClaim/{TRITON}-models",
        f"PodDisruptionBudget/{TRITON}",
        f"Service/{TRITON}",
    ]


def test_triton_serves_the_repository_on_a_gpu(renders: Renders) -> None:
    objects = renders("gpu-triton")
    deployment = find(objects, "Deployment", TRITON)
    spec = deployment["spec"]["template"]["spec"]
    (triton,) = spec["containers"]
    assert re.fullmatch(r"nvcr\.io/nvidia/tritonserver:\d\d\.\d\d-py3", triton["image"])
    assert triton["command"] == ["tritonserver"]
    assert triton["args"][:2] == ["--model-repository=/models", "--model-control-mode=explicit"]
    assert "--load-model=facemask" in triton["args"]
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}

    assert triton["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert triton["resources"]["limits"]["memory"] == "32Gi"
    (term,) = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert term["matchExpressions"] == [
        {
            "key": "nvidia.com/gpu.product",
            "operator": "In",
            "values": ["NVIDIA-H100-80GB-HBM3", "NVIDIA-H200"],
        }
    ]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec[
        "tolerations"
    ]

    ports = {p["name"]: p["containerPort"] for p in triton["ports"]}
    assert ports == {"http": 8000, "grpc": 8001, "metrics": 8002}
    service = find(objects, "Service", TRITON)
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == ports
    assert triton["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert triton["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    assert triton["startupProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}

    assert spec["securityContext"]["runAsUser"] == 1000  # the image's triton-server user
    mounts = {m["mountPath"]: m for m in triton["volumeMounts"]}
    assert mounts["/models"]["readOnly"] is True
    assert set(mounts) == {"/models", "/tmp", "/dev/shm"}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["models"]["persistentVolumeClaim"]["claimName"] == f"{TRITON}-models"
    assert volumes["shm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "1Gi"}
    claim = find(objects, "PersistentVolumeClaim", f"{TRITON}-models")
    assert claim["spec"]["resources"]["requests"]["storage"] == "50Gi"
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert find(objects, "PodDisruptionBudget", TRITON)["spec"]["minAvailable"] == 1


def test_triton_on_a_claim_of_ones_own(chart_dir: Path, helm: Path, tmp_path: Path) -> None:
    own = tmp_path / "own.yaml"
    own.write_text(yaml.safe_dump({"triton": {"modelRepository": {"existingClaim": "engines"},
                                              "gpu": {"products": []}}}))  # fmt: skip
    objects = render(chart_dir, CI / "gpu-triton-values.yaml", own)
    assert [o for o in objects if o["kind"] == "PersistentVolumeClaim"] == []
    spec = find(objects, "Deployment", TRITON)["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["models"]["persistentVolumeClaim"] == {"claimName": "engines", "readOnly": True}
    assert "affinity" not in spec  # no product list: any node with a free GPU


def test_the_inference_services_call_the_charts_triton(renders: Renders) -> None:
    objects = renders("gpu-triton")
    urls = {
        name: env_of(c)["HERON_BACKEND__URL"]["value"]
        for name, c in heron_containers(objects).items()
        if "HERON_BACKEND__URL" in env_of(c)
    }
    assert urls == {"Deployment/heron-facemask/inference": f"{TRITON}:8001"}


def with_template(chart: Path, folder: Path, name: str, text: str) -> Path:
    """A copy of the chart with one more template."""
    copy = folder / "heron"
    shutil.copytree(chart, copy)
    (copy / "templates" / name).write_text(text)
    return copy


def test_the_triton_url_helper(chart_dir: Path, helm: Path, tmp_path: Path) -> None:
    probe = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: probe}\n"
        'data: {url: {{ include "heron.tritonUrl" . | quote }}}\n'
    )
    chart = with_template(chart_dir, tmp_path, "zz-probe.yaml", probe)

    def url(**set_values: str) -> str:
        objects = template(chart, release="cams", set_values=set_values)
        value: str = find(objects, "ConfigMap", "probe")["data"]["url"]
        return value

    assert url() == ""
    assert url(**{"triton.enabled": "true"}) == "cams-heron-triton:8001"
    assert (
        url(**{"triton.enabled": "true", "triton.ports.grpc": "9001"}) == "cams-heron-triton:9001"
    )


# --- monitoring ------------------------------------------------------------------------------


def test_monitoring_objects_only_where_the_operator_is(chart_dir: Path, renders: Renders) -> None:
    assert monitoring_objects(renders("default")) == []
    assert monitoring_objects(renders("external-secret")) == []
    assert monitoring_objects(renders("monitoring")) == [
        "PodMonitor/heron-pipelines",
        "PrometheusRule/heron-alerts",
    ]
    assert monitoring_objects(renders("everything")) == [
        "PodMonitor/heron-pipelines",
        "PrometheusRule/heron-alerts",
        f"ServiceMonitor/{REDIS}",
        f"ServiceMonitor/{TRITON}",
    ]
    # A kind-specific API version (as some tools pass it) switches them on too.
    by_kind = render(
        chart_dir,
        CI / "default-values.yaml",
        api_versions=[f"{MONITORING_API}/PodMonitor", f"{MONITORING_API}/PrometheusRule"],
    )
    assert monitoring_objects(by_kind) == monitoring_objects(renders("monitoring"))
    off = render(
        chart_dir,
        CI / "default-values.yaml",
        api_versions=[MONITORING_API],
        set_values={"monitoring.enabled": "false"},
    )
    assert monitoring_objects(off) == []


def test_the_operator_is_scraped_keeping_its_series_namespaces(chart_dir: Path) -> None:
    """heron_operator_* name the namespace of their object: scraped with honorLabels, from the
    operator pod's port `metrics` (docs/observability.md, "Operator metrics")."""
    objects = render(
        chart_dir,
        CI / "default-values.yaml",
        api_versions=[MONITORING_API],
        set_values={"operator.enabled": "true"},
    )
    (monitor,) = [
        o for o in objects if o["kind"] == "PodMonitor" and component(o) == "monitoring"
        and "operator" in o["metadata"]["name"]
    ]  # fmt: skip
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["honorLabels"]) == ("metrics", True)
    pods = [
        o["spec"]["template"] for o in objects
        if o["kind"] == "Deployment" and component(o) == "operator"
    ]  # fmt: skip
    (pod,) = pods
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    ports = [p["name"] for c in pod["spec"]["containers"] for p in c.get("ports", [])]
    assert "metrics" in ports
    no_operator = render(chart_dir, CI / "default-values.yaml", api_versions=[MONITORING_API])
    assert not [o for o in no_operator if "operator" in o["metadata"]["name"]]


def test_the_pod_monitor_scrapes_every_service(renders: Renders) -> None:
    objects = renders("monitoring")
    monitor = find(objects, "PodMonitor", "heron-pipelines")
    assert monitor["metadata"]["namespace"] == NAMESPACE
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector == {"app.kubernetes.io/part-of": "heron", "app.kubernetes.io/instance": RELEASE}
    endpoints = monitor["spec"]["podMetricsEndpoints"]
    assert [e["port"] for e in endpoints] == list(METRICS_PORTS.values())
    assert {(e["path"], e["interval"], e["scrapeTimeout"]) for e in endpoints} == {
        ("/metrics", "15s", "10s")
    }
    # The pipeline's name on every series: what an EngineRollout's gates select a pipeline by
    # (heron_dev_pipeline, docs/operator.md "The gates").
    assert monitor["spec"]["podTargetLabels"] == [
        "app.kubernetes.io/component",
        "heron.dev/pipeline",
    ]
    # Every metrics port of the pipelines' pods is scraped: the names agree with theirs.
    seen = set()
    for workload in (o for o in objects if o["kind"] == "Deployment"):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        if component(workload) == "triton":
            continue
        assert selector.items() <= labels.items(), workload["metadata"]["name"]
        for c in workload["spec"]["template"]["spec"]["containers"]:
            (metrics,) = [p for p in c["ports"] if p["name"].startswith("metrics")]
            assert metrics["name"] == METRICS_PORTS[c["name"]], c["name"]
            seen.add(c["name"])
    assert seen == set(METRICS_PORTS)


def test_service_monitors_of_triton_and_redis(renders: Renders) -> None:
    objects = renders("everything")
    for name, component_ in ((TRITON, "triton"), (REDIS, "redis")):
        monitor = find(objects, "ServiceMonitor", name)
        assert monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == (
            component_
        )
        assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
        service = find(objects, "Service", name)
        assert "metrics" in [p["name"] for p in service["spec"]["ports"]]
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def rule_groups(objects: Objects) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = find(objects, "PrometheusRule", "heron-alerts")["spec"]["groups"]
    return groups


def rules_by_name(groups: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r.get("alert", r.get("record")): r for g in groups for r in g["rules"]}


def test_the_rules_are_the_files_scoped_to_the_release(renders: Renders) -> None:
    """The PrometheusRule is charts/heron/rules/heron.rules.yaml with each job placeholder
    made this release's namespace and job, and nothing else changed at the defaults."""
    source = yaml.safe_load(RULES_FILE.read_text())["groups"]
    rendered = rule_groups(renders("everything"))
    # No operator in this release: its models group is left out; Triton's and Redis's are in.
    assert [g["name"] for g in rendered] == [
        g["name"] for g in source if g["name"] != "heron.models"
    ]
    assert [g["name"] for g in rule_groups(renders("monitoring"))] == [
        "heron.records",
        "heron.pipelines",
    ]
    scope = {
        'job="heron-pipelines"': f'namespace="{NAMESPACE}", job="{NAMESPACE}/heron-pipelines"',
        'job="heron-triton"': f'namespace="{NAMESPACE}", job="{TRITON}"',
        'job="heron-redis"': f'namespace="{NAMESPACE}", job="{REDIS}"',
    }
    got = rules_by_name(rendered)
    for name, rule in rules_by_name(source).items():
        if name not in got:
            continue
        expr = rule["expr"]
        for placeholder, selector in scope.items():
            expr = expr.replace(placeholder, selector)
        assert got[name]["expr"] == expr, name
        assert got[name].get("labels") == rule.get("labels"), name
        assert got[name].get("annotations") == rule.get("annotations"), name


def test_the_rules_take_the_thresholds_labels_and_runbooks_of_the_values(
    chart_dir: Path, tmp_path: Path
) -> None:
    values = tmp_path / "rules.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "operator": {"enabled": True},
                "monitoring": {
                    "rules": {
                        "fpsBelowSourceRatio": 0.75,
                        "rolloutStuckSeconds": 1800,
                        "metadataLagSeconds": 0.5,
                        "labels": {"team": "vision", "severity": "page"},
                        "runbookUrl": "https://wiki.example/heron",
                    }
                },
            }
        )
    )
    objects = render(chart_dir, CI / "default-values.yaml", values, api_versions=[MONITORING_API])
    rules = rules_by_name(rule_groups(objects))
    assert "0.75  # monitoring.rules.fpsBelowSourceRatio" in rules["HeronFpsBelowSource"]["expr"]
    assert "1800  # monitoring.rules.rolloutStuckSeconds" in rules["HeronRolloutStuck"]["expr"]
    lag = rules["HeronMetadataLagHigh"]["expr"]
    assert "> 0.5  # monitoring.rules.metadataLagSeconds" in lag
    assert "> 1000  # monitoring.rules.metadataBacklogMessages" in lag  # the default stays
    assert rules["HeronStreamDown"]["labels"] == {"severity": "page", "team": "vision"}
    assert rules["HeronStreamDown"]["annotations"]["runbook_url"] == (
        "https://wiki.example/heron#heronstreamdown"
    )
    assert "labels" not in rules["pipeline_stream:heron_fps_in:rate1m"]


def test_promtool_accepts_the_rules(promtool: str, renders: Renders, tmp_path: Path) -> None:
    for scenario in ("monitoring", "everything"):
        path = tmp_path / f"{scenario}.yaml"
        path.write_text(yaml.safe_dump({"groups": rule_groups(renders(scenario))}))
        done = subprocess.run(
            [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "SUCCESS" in done.stdout


def series(metric: str, values: str, **labels: str) -> dict[str, str]:
    scope = {"namespace": NAMESPACE, "job": f"{NAMESPACE}/heron-pipelines", "pod": "p1"}
    text = ", ".join(f'{k}="{v}"' for k, v in {**scope, **labels}.items())
    return {"series": f"{metric}{{{text}}}", "values": values}


def test_the_rendered_alerts_see_only_this_release(
    promtool: str, renders: Renders, tmp_path: Path
) -> None:
    """promtool test rules on the render: this release's series fire the alerts, the same
    series of another namespace or release do not (tests/charts/test_rules.py tests every
    alert on the file itself)."""
    groups = rule_groups(renders("everything"))
    for group in groups:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    here = {"namespace": NAMESPACE, "heron_dev_pipeline": "facemask"}
    elsewhere = {"namespace": "other", "job": "other/heron-pipelines"}
    state = {"stream": "source-0", "heron_ingest_stream_state": "reconnecting"}
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    series("heron_ingest_stream_state", "1x10", heron_dev_pipeline="facemask",
                           **state),
                    series("heron_ingest_stream_state", "1x10", heron_dev_pipeline="facemask",
                           **state, **elsewhere),
                    series("up", "0x10", endpoint="metrics-infer"),
                    series("up", "0x10", endpoint="metrics-infer", job="heron-pipelines"),
                    {"series": f'up{{namespace="{NAMESPACE}", job="{TRITON}"}}', "values": "0x10"},
                    {"series": 'up{namespace="other", job="heron-triton"}', "values": "0x10"},
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "5m",
                        "alertname": "HeronStreamDown",
                        "exp_alerts": [
                            {"exp_labels": {**here, "stream": "source-0", "severity": "critical"}}
                        ],
                    },
                    {
                        "eval_time": "5m",
                        "alertname": "HeronServiceTargetDown",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "namespace": NAMESPACE,
                                    "job": f"{NAMESPACE}/heron-pipelines",
                                    "pod": "p1",
                                    "endpoint": "metrics-infer",
                                    "severity": "critical",
                                }
                            }
                        ],
                    },
                    {
                        "eval_time": "5m",
                        "alertname": "HeronTritonDown",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "namespace": NAMESPACE,
                                    "job": TRITON,
                                    "severity": "critical",
                                }
                            }
                        ],
                    },
                ],
            }
        ],
    }  # fmt: skip
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    done = subprocess.run(
        [promtool, "test", "rules", "tests.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_dashboards_come_from_the_dashboards_folder(
    chart_dir: Path, helm: Path, tmp_path: Path
) -> None:
    """One ConfigMap per charts/heron/dashboards/*.json, labelled for Grafana's sidecar, with
    or without the Prometheus Operator; none when switched off."""
    files = sorted(p.name for p in (chart_dir / "dashboards").glob("*.json"))
    assert files == [
        "heron-bus.json",
        "heron-inference.json",
        "heron-models.json",
        "heron-pipeline-overview.json",
    ]
    objects = [o for o in render(chart_dir) if component(o) == "dashboards"]
    assert [o["metadata"]["name"] for o in objects] == [
        f"heron-dashboard-{Path(f).stem}" for f in files
    ]
    for configmap, name in zip(objects, files, strict=True):
        assert configmap["kind"] == "ConfigMap"
        assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
        text = (chart_dir / "dashboards" / name).read_text()
        assert configmap["data"] == {name: text.rstrip("\n")}
        assert validate(configmap, "1.33") == []

    chart = tmp_path / "heron"
    shutil.copytree(chart_dir, chart)
    (chart / "dashboards" / "Heron_Pipelines.json").write_text('{"title": "x", "panels": []}')
    names = [o["metadata"]["name"] for o in render(chart) if component(o) == "dashboards"]
    assert "heron-dashboard-heron-pipelines" in names  # the file name made a DNS label
    off = render(chart, set_values={"monitoring.dashboards.enabled": "false"})
    assert [o for o in off if component(o) == "dashboards"] == []


# --- helm test and NOTES ---------------------------------------------------------------------


def hook_pod(objects: Objects) -> dict[str, Any]:
    hooks = [o for o in objects if o["kind"] == "Pod"]
    assert len(hooks) == 1
    return hooks[0]


def test_helm_test_checks_each_pipelines_control_health(renders: Renders) -> None:
    objects = renders("default")
    pod = hook_pod(objects)
    assert pod["metadata"]["name"] == "heron-test-control-health"
    assert pod["metadata"]["annotations"] == {
        "helm.sh/hook": "test",
        "helm.sh/hook-delete-policy": "before-hook-creation,hook-succeeded",
    }
    assert pod["spec"]["restartPolicy"] == "Never"
    (container,) = pod["spec"]["containers"]
    assert container["image"] == "ghcr.io/heron-project/heron-control:0.1.0"
    command = container["command"]
    assert command[:2] == ["python3", "-c"]
    assert 'service="heron.v1.Pipeline"' in command[2]
    assert command[3:] == ["10", "facemask=heron-facemask-control:50051"]
    service = find(objects, "Service", "heron-facemask-control")
    assert [p["port"] for p in service["spec"]["ports"]] == [50051]


def test_no_hook_without_pipelines_or_when_disabled(chart_dir: Path, helm: Path) -> None:
    assert [o for o in render(chart_dir) if o["kind"] == "Pod"] == []
    off = render(chart_dir, CI / "default-values.yaml", set_values={"tests.enabled": "false"})
    assert [o for o in off if o["kind"] == "Pod"] == []


def test_the_hooks_health_check_works(renders: Renders) -> None:
    """The hook's rendered script against a real gRPC health service: 0 when every pipeline
    is SERVING, 1 when one is not or does not answer."""
    grpc = pytest.importorskip("grpc")
    health_module = pytest.importorskip("grpc_health.v1.health")
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    script = hook_pod(renders("default"))["spec"]["containers"][0]["command"][2]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health = health_module.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:

        def check(*targets: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-c", script, "1", *targets],
                capture_output=True,
                text=True,
                check=False,
            )

        here = f"cams=127.0.0.1:{port}"
        health.set("heron.v1.Pipeline", health_pb2.HealthCheckResponse.SERVING)
        done = check(here)
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"pipeline cams: 127.0.0.1:{port} heron.v1.Pipeline SERVING\n"

        health.set("heron.v1.Pipeline", health_pb2.HealthCheckResponse.NOT_SERVING)
        done = check(here)
        assert done.returncode == 1
        assert "NOT_SERVING" in done.stdout

        health.set("heron.v1.Pipeline", health_pb2.HealthCheckResponse.SERVING)
        done = check(here, "gone=127.0.0.1:1")
        assert done.returncode == 1
        assert "pipeline gone: 127.0.0.1:1 heron.v1.Pipeline DEADLINE_EXCEEDED" in done.stdout
    finally:
        server.stop(None)


def notes(helm: Path, chart: Path, *values: Path, **set_values: str) -> str:
    """NOTES.txt for this file's release (`helm` is the fixture: no helm, no test)."""
    del helm
    return install_notes(chart, RELEASE, NAMESPACE, values=values, set_values=set_values)


def test_notes_tell_how_to_reach_the_pipeline(helm: Path, chart_dir: Path) -> None:
    text = notes(helm, chart_dir, CI / "default-values.yaml")
    assert "release heron, namespace video" in text
    assert "kubectl -n video port-forward svc/heron-facemask-rtsp 8554:8554" in text
    assert "rtsp://127.0.0.1:8554/ds-test" in text
    assert "kubectl -n video port-forward svc/heron-facemask-control 50051:50051" in text
    assert "heron status --server 127.0.0.1:50051" in text
    assert "heron watch --server 127.0.0.1:50051" in text
    assert "the chart's own: StatefulSet heron-redis, Service heron-redis:6379" in text
    assert "get secret heron-redis -o jsonpath='{.data.password}'" in text
    assert "no monitors or alerts were rendered" in text
    assert "run Prometheus with --enable-feature=exemplar-storage" in text
    assert "Grafana dashboards: 4 ConfigMap(s) labelled grafana_dashboard=1 " in text
    assert "app.kubernetes.io/component=dashboards,app.kubernetes.io/instance=heron" in text
    assert "helm test heron -n video" in text


def test_notes_name_the_redis_and_triton_in_use(helm: Path, chart_dir: Path) -> None:
    text = notes(helm, chart_dir, CI / "external-redis-values.yaml")
    assert "its URL is in Secret heron-redis-url, key url" in text
    text = notes(
        helm, chart_dir, CI / "gpu-triton-values.yaml", **{"redis.external.url": EXTERNAL_URL}
    )
    assert "an external Redis, redis://redis.example.internal:6379" in text
    assert "ext-s3cret" not in text  # the URL's password is never printed
    assert "Triton: Service heron-triton (gRPC 8001, HTTP 8000)" in text
    assert "(facemask at start)" in text


# --- values the schema refuses, and lint -----------------------------------------------------


@pytest.mark.parametrize(
    ("set_values", "said"),
    [
        ({"redis.bogus": "1"}, "at '/redis': additional properties 'bogus' not allowed"),
        ({"redis.persistence.sise": "1Gi"}, "at '/redis/persistence': additional properties"),
        ({"redis.port": "many"}, "at '/redis/port': got string, want integer"),
        ({"redis.port": "70000"}, "at '/redis/port'"),
        (
            {"redis.persistence.appendfsync": "sometimes"},
            "at '/redis/persistence/appendfsync': value must be one of 'always', 'everysec', 'no'",
        ),
        ({"redis.external.url": "http://redis"}, "at '/redis/external/url'"),
        ({"triton.enabled": "yes"}, "at '/triton/enabled': got string, want boolean"),
        ({"triton.strategy": "BlueGreen"}, "at '/triton/strategy': value must be one of"),
        ({"triton.gpu.count": "0"}, "at '/triton/gpu/count'"),
        ({"triton.extraArgs": "{log-verbose}"}, "at '/triton/extraArgs/0'"),
        ({"monitoring.interval": "often"}, "at '/monitoring/interval'"),
        ({"monitoring.rules.framesDroppedRatio": "2"}, "at '/monitoring/rules/framesDroppedRatio'"),
        ({"monitoring.podmonitor": "{}"}, "at '/monitoring': additional properties 'podmonitor'"),
        ({"tests.timeoutSeconds": "0"}, "at '/tests/timeoutSeconds'"),
    ],
    ids=lambda v: next(iter(v)) if isinstance(v, dict) else None,
)
def test_bad_values_are_refused_naming_the_field(
    chart_dir: Path, helm: Path, set_values: dict[str, str], said: str
) -> None:
    with pytest.raises(HelmError) as caught:
        render(chart_dir, set_values=set_values)
    assert said in caught.value.stderr


@pytest.mark.parametrize("name", ["gpu-triton-values.yaml", "external-redis-values.yaml"])
@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_lint_strict_passes(chart_dir: Path, helm: Path, name: str, kube_version: str) -> None:
    assert "0 chart(s) failed" in lint(chart_dir, values=[CI / name], kube_version=kube_version)


# The pipelines of these ci files, and the options the planner wrote them with.
PLANNED: dict[str, tuple[Path, Callable[[], PlanOptions]]] = {
    "gpu-triton-values.yaml": (
        FIXTURES / "facemask" / "facemask.txt",
        lambda: PlanOptions(backend="triton", triton_model="facemask"),
    ),
    "external-redis-values.yaml": (
        FIXTURES / "cpu-only" / "cpu-only.txt",
        lambda: PlanOptions(intra_op_threads=2),
    ),
}


@pytest.mark.parametrize("name", sorted(PLANNED))
def test_the_ci_pipelines_are_what_the_planner_writes(name: str) -> None:
    config, options = PLANNED[name]
    planned, _ = helm_values([config], options())
    written = yaml.safe_load((CI / name).read_text())
    assert written["pipelines"] == planned["pipelines"], (
        f"the pipelines of charts/heron/ci/{name} are stale: write them again with "
        f"heron config plan (the command is in the file's header)"
    )
