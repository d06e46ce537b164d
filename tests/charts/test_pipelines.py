"""The chart's pipelines: the plan `heron config plan --format helm` writes, rendered by the real
helm into Kubernetes objects, and read back.

Three renders are shared by the module (helm template costs ~0.2 s): the face-mask pipeline on
RTSP cameras (charts/heron/ci/default-values.yaml), the same with a deployment's GPU choices
(tests/fixtures/charts/gpu-values.yaml) and the CPU-only pipeline (ci/cpu-only-values.yaml).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from heron.core.config.cli import app
from heron.core.plan.deploy import dump_values, helm_values
from heron.core.plan.model import PipelinePlan, decided
from heron.core.plan.options import PlanOptions
from heron.core.plan.settings.control import ControlSettings
from heron.core.plan.settings.inference import InferenceSettings
from heron.core.plan.settings.ingest import IngestSettings
from heron.core.plan.settings.overlay import OverlaySettings
from heron.core.plan.settings.streammux import StreammuxSettings
from heron.core.plan.settings.tracker import TrackerSettings
from heron.core.runtime import ServiceSettings
from typer.testing import CliRunner

from tests.conftest import REPO
from tests.support.helm import HelmError, lint, template
from tests.support.kube_schemas import validate

FIXTURES = REPO / "tests" / "fixtures" / "charts"
CI = REPO / "charts" / "heron" / "ci"
KUBE_VERSIONS = ["1.29.0", "1.33.0"]
RELEASE = "cams"
POD_DIR = "/etc/heron/pipeline"
# Each committed values file, and the command that writes it (run in its config's folder).
GENERATED = {
    "default-values.yaml": (FIXTURES / "facemask" / "facemask.txt", []),
    "cpu-only-values.yaml": (FIXTURES / "cpu-only" / "cpu-only.txt", ["--threads", "2"]),
}
SETTINGS: dict[str, type[ServiceSettings]] = {
    "ingest": IngestSettings,
    "streammux": StreammuxSettings,
    "inference": InferenceSettings,
    "tracker": TrackerSettings,
    "overlay": OverlaySettings,
    "control": ControlSettings,
}
PIPELINE_SERVICES = ["ingest", "streammux", "inference", "tracker", "overlay"]
runner = CliRunner()

Objects = list[dict[str, Any]]


# --- renders, shared -------------------------------------------------------------------------


def render(chart: Path, *values: Path, **kwargs: Any) -> Objects:
    return template(chart, release=RELEASE, namespace="video", values=list(values), **kwargs)


@pytest.fixture(scope="module")
def facemask(helm: Path, chart_dir: Path) -> Objects:
    return render(chart_dir, CI / "default-values.yaml")


@pytest.fixture(scope="module")
def gpu(helm: Path, chart_dir: Path) -> Objects:
    return render(chart_dir, CI / "default-values.yaml", FIXTURES / "gpu-values.yaml")


@pytest.fixture(scope="module")
def cpu_only(helm: Path, chart_dir: Path) -> Objects:
    return render(chart_dir, CI / "cpu-only-values.yaml")


def ours(objects: Objects) -> Objects:
    """The pipelines' objects (the chart's Redis, Triton and monitoring are tested elsewhere)."""
    return [o for o in objects if "heron.dev/pipeline" in o["metadata"].get("labels", {})]


def find(objects: Objects, kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name}: {len(found)} rendered"
    return found[0]


def pod(objects: Objects, name: str = "cams-heron-facemask") -> dict[str, Any]:
    spec: dict[str, Any] = find(objects, "Deployment", name)["spec"]["template"]["spec"]
    return spec


def containers(objects: Objects, name: str = "cams-heron-facemask") -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in pod(objects, name)["containers"]}


def values_file(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((CI / name).read_text())
    return data


def pipeline_entry(name: str = "default-values.yaml") -> dict[str, Any]:
    entry: dict[str, Any] = values_file(name)["pipelines"][0]
    return entry


# --- the values the planner writes ----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_the_ci_values_are_what_the_planner_writes(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, options = GENERATED[name]
    monkeypatch.chdir(config.parent)

    result = runner.invoke(app, ["plan", config.name, "--format", "helm", *options])

    assert result.exit_code == 0, result.output
    assert result.stdout == (CI / name).read_text(), (
        f"charts/heron/ci/{name} is stale: in {config.parent.relative_to(REPO)} run "
        f"heron config plan {config.name} --format helm {' '.join(options)} > {CI / name}"
    )


# --- every object is valid Kubernetes ---------------------------------------------------------


@pytest.mark.usefixtures("helm")
@pytest.mark.parametrize("name", sorted(GENERATED))
def test_the_chart_lints_with_the_ci_values(chart_dir: Path, name: str) -> None:
    lint(chart_dir, values=[CI / name], strict=True)


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize(
    "values",
    [["default-values.yaml"], ["cpu-only-values.yaml"], ["default-values.yaml", "gpu"]],
    ids=["facemask", "cpu-only", "gpu"],
)
def test_every_object_is_valid(
    helm: Path, chart_dir: Path, values: list[str], kube_version: str
) -> None:
    files = [FIXTURES / "gpu-values.yaml" if v == "gpu" else CI / v for v in values]

    objects = ours(render(chart_dir, *files, kube_version=kube_version))

    assert objects
    minor = ".".join(kube_version.split(".")[:2])
    errors = {f"{o['kind']}/{o['metadata']['name']}": validate(o, minor) for o in objects}
    assert {k: v for k, v in errors.items() if v} == {}


def test_what_a_pipeline_makes(facemask: Objects, cpu_only: Objects) -> None:
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in ours(facemask))

    assert kinds == [
        ("ConfigMap", "cams-heron-facemask-config"),
        ("ConfigMap", "cams-heron-facemask-settings"),
        ("Deployment", "cams-heron-facemask"),
        ("Deployment", "cams-heron-facemask-control"),
        ("NetworkPolicy", "cams-heron-facemask"),
        ("NetworkPolicy", "cams-heron-facemask-control"),
        ("Service", "cams-heron-facemask-control"),
        ("Service", "cams-heron-facemask-detector"),
        ("Service", "cams-heron-facemask-rtsp"),
    ]
    # No overlay, no RTSP Service; and never a PodDisruptionBudget for the one pipeline pod.
    names = {(o["kind"], o["metadata"]["name"]) for o in ours(cpu_only)}
    assert ("Service", "cams-heron-cpu-only-rtsp") not in names
    assert not [o for o in ours(facemask) + ours(cpu_only) if o["kind"] == "PodDisruptionBudget"]


# --- the pods ---------------------------------------------------------------------------------


def test_one_pod_per_pipeline_with_a_container_per_service(facemask: Objects) -> None:
    deployment = find(facemask, "Deployment", "cams-heron-facemask")

    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert list(containers(facemask)) == PIPELINE_SERVICES
    assert list(containers(facemask, "cams-heron-facemask-control")) == ["control"]


def test_images_and_commands(helm: Path, chart_dir: Path, facemask: Objects) -> None:
    tagged = render(chart_dir, CI / "default-values.yaml", set_values={"image.tag": "1.2.3"})

    for name, container in containers(facemask).items():
        assert container["image"] == f"ghcr.io/heron-project/heron-{name}:0.1.0"
        assert container["command"] == ["python3", "-m", f"heron.{name}"]
        settings = f"/etc/heron/settings/{name}.yaml"
        expected = (
            ["-c", f"{POD_DIR}/facemask.txt", "--settings", settings]
            if name == "ingest"
            else ["--config", settings]
        )
        assert container["args"] == expected
    assert containers(tagged)["inference"]["image"].endswith("/heron-inference:1.2.3")
    control = containers(tagged, "cams-heron-facemask-control")["control"]
    assert control["image"] == "ghcr.io/heron-project/heron-control:1.2.3"
    assert control["command"] == ["python3", "-m", "heron.control"]
    assert control["args"] == ["--config", "/etc/heron/settings/control.yaml"]


def test_ports_and_probes(facemask: Objects) -> None:
    everything = {**containers(facemask), **containers(facemask, "cams-heron-facemask-control")}
    plan = {s["service"]: s["settings"] for s in pipeline_entry()["plan"]["services"]}
    short = {"streammux": "mux", "inference": "infer"}

    for name, container in everything.items():
        port_name = f"metrics-{short.get(name, name)}"
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports[port_name] == plan[name]["metrics"]["port"]
        for probe, path in [("startupProbe", "/healthz"), ("livenessProbe", "/healthz"),
                            ("readinessProbe", "/readyz")]:  # fmt: skip
            assert container[probe]["httpGet"] == {"path": path, "port": port_name}, name
        # Model loading may take startup_timeout_s (300 s) before liveness counts.
        startup = container["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 300
    # One network namespace per pod: the pipeline's containers listen on distinct ports.
    in_pod = [p["containerPort"] for c in containers(facemask).values() for p in c["ports"]]
    assert len(in_pod) == len(set(in_pod))
    assert {p["name"]: p["containerPort"] for p in everything["inference"]["ports"]}[
        "grpc"
    ] == 50052
    assert {p["name"]: p["containerPort"] for p in everything["overlay"]["ports"]}["rtsp-8554"] == (
        8554
    )
    assert {p["name"]: p["containerPort"] for p in everything["control"]["ports"]}["grpc"] == 50051


def test_resources_default_and_per_pipeline(helm: Path, chart_dir: Path, facemask: Objects) -> None:
    tuned = render(
        chart_dir,
        CI / "default-values.yaml",
        set_values={
            "pipelineDefaults.resources.tracker.limits.memory": "3Gi",
            "pipelines[0].resources.inference.limits.cpu": "6",
        },
    )

    defaults = containers(facemask)
    assert defaults["ingest"]["resources"] == {
        "requests": {"cpu": "1", "memory": "1Gi"},
        "limits": {"memory": "4Gi"},
    }
    for container in [
        *defaults.values(),
        *containers(facemask, "cams-heron-facemask-control").values(),
    ]:
        assert container["resources"]["requests"]["cpu"]
        assert container["resources"]["limits"]["memory"]
    changed = containers(tuned)
    assert changed["tracker"]["resources"]["limits"] == {"memory": "3Gi"}
    # A pipeline's own key merges into the defaults: the memory limit and requests stay.
    assert changed["inference"]["resources"] == {
        "requests": {"cpu": "2", "memory": "1Gi"},
        "limits": {"cpu": 6, "memory": "4Gi"},
    }


def test_pods_are_restricted(facemask: Objects) -> None:
    for name in ("cams-heron-facemask", "cams-heron-facemask-control"):
        spec = pod(facemask, name)
        assert spec["securityContext"] == {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        assert spec["automountServiceAccountToken"] is False
        assert spec["enableServiceLinks"] is False
        for container in spec["containers"]:
            assert container["securityContext"] == {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "runAsNonRoot": True,
                "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"},
            }
            # The root filesystem is read-only: /tmp is where a service may write.
            mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
            assert "/tmp" in mounts


def test_frames_are_shared_in_memory(facemask: Objects) -> None:
    spec = pod(facemask)
    volumes = {v["name"]: v for v in spec["volumes"]}

    assert volumes["shm"]["emptyDir"] == {
        "medium": "Memory",
        "sizeLimit": pipeline_entry()["shm"]["sizeLimit"],
    }
    for container in spec["containers"]:
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert mounts["/dev/shm"] == "shm"
    control = pod(facemask, "cams-heron-facemask-control")
    assert "shm" not in {v["name"] for v in control["volumes"]}


def test_gpu_request_and_node_affinity(gpu: Objects, facemask: Objects, cpu_only: Objects) -> None:
    spec = pod(gpu)

    limits = {n: c["resources"]["limits"] for n, c in containers(gpu).items()}
    assert limits["inference"]["nvidia.com/gpu"] == 1
    assert [n for n, lim in limits.items() if "nvidia.com/gpu" in lim] == ["inference"]
    products = {"key": "nvidia.com/gpu.product", "operator": "In",
                "values": ["NVIDIA-A10", "NVIDIA-L4"]}  # fmt: skip
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    # Compute capability 8.6 or more: major above 8, or major 8 and minor above 5.
    assert terms["nodeSelectorTerms"] == [
        {"matchExpressions": [
            products, {"key": "nvidia.com/gpu.compute.major", "operator": "Gt", "values": ["8"]},
        ]},
        {"matchExpressions": [
            products,
            {"key": "nvidia.com/gpu.compute.major", "operator": "In", "values": ["8"]},
            {"key": "nvidia.com/gpu.compute.minor", "operator": "Gt", "values": ["5"]},
        ]},
    ]  # fmt: skip
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in (
        spec["tolerations"]
    )
    # Without a GPU: no request, no affinity, no toleration, anywhere.
    for objects in (facemask, cpu_only):
        text = json.dumps(ours(objects))
        assert "nvidia.com/gpu" not in text
        assert "affinity" not in text


@pytest.mark.usefixtures("helm")
@pytest.mark.parametrize(
    ("gpu", "terms"),
    [
        ({"minComputeCapability": "9.0"},
         [[{"key": "nvidia.com/gpu.compute.major", "operator": "Gt", "values": ["8"]}]]),
        ({"products": ["NVIDIA-L4"]},
         [[{"key": "nvidia.com/gpu.product", "operator": "In", "values": ["NVIDIA-L4"]}]]),
        ({}, None),
    ],
    ids=["capability 9.0", "a product", "any GPU"],
)  # fmt: skip
def test_gpu_node_choice(
    chart_dir: Path, tmp_path: Path, gpu: dict[str, Any], terms: list[Any] | None
) -> None:
    choice = tmp_path / "gpu.yaml"
    choice.write_text(yaml.safe_dump({"pipelineDefaults": {"gpu": {"enabled": True, **gpu}}}))

    spec = pod(render(chart_dir, CI / "cpu-only-values.yaml", choice), "cams-heron-cpu-only")

    assert containers_of(spec)["inference"]["resources"]["limits"]["nvidia.com/gpu"] == 1
    if terms is None:
        assert "affinity" not in spec
    else:
        node = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert [t["matchExpressions"] for t in node["nodeSelectorTerms"]] == terms


def containers_of(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in spec["containers"]}


def test_the_models_volume(gpu: Objects, facemask: Objects) -> None:
    spec = pod(gpu)

    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["models"]["persistentVolumeClaim"] == {
        "claimName": "facemask-models",
        "readOnly": True,
    }
    for container in spec["containers"]:
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        assert mounts["models"] == {"name": "models", "mountPath": "/models", "readOnly": True}
    assert "models" not in {v["name"] for v in pod(facemask)["volumes"]}


def test_the_media_volume_is_what_add_source_may_read(
    helm: Path, chart_dir: Path, facemask: Objects, tmp_path: Path
) -> None:
    """Without one, control has no media roots (file sources refused at run time); with one,
    ingest and control mount it read-only at one path and control's media_roots is that path."""
    values = tmp_path / "media.yaml"
    values.write_text(
        yaml.safe_dump(
            {"pipelineDefaults": {"media": {"existingClaim": "clips", "mountPath": "/srv/media"}}}
        )
    )
    with_media = render(chart_dir, CI / "default-values.yaml", values)
    control = "cams-heron-facemask-control"

    roots: list[str | None] = []
    for objects in (facemask, with_media):
        env = {e["name"]: e.get("value") for e in containers(objects, control)["control"]["env"]}
        roots.append(env.get("HERON_PIPELINE_API__MEDIA_ROOTS"))
    assert roots == [None, '["/srv/media"]']
    assert "media" not in {v["name"] for v in pod(facemask)["volumes"]}
    mount = {"name": "media", "mountPath": "/srv/media", "readOnly": True}
    claim = {"claimName": "clips", "readOnly": True}
    for name, readers in (("cams-heron-facemask", {"ingest"}), (control, {"control"})):
        spec = pod(with_media, name)
        assert {v["name"]: v for v in spec["volumes"]}["media"]["persistentVolumeClaim"] == claim
        for container in spec["containers"]:
            mounts = [m for m in container["volumeMounts"] if m["name"] == "media"]
            assert mounts == ([mount] if container["name"] in readers else []), container["name"]
    # The value is what the control service's settings read from that variable.
    api = ControlSettings.model_validate(
        {"pipeline_api": {"media_roots": json.loads(roots[1] or "")}}
    )
    assert api.pipeline_api.media_roots == (Path("/srv/media"),)


# --- Services -----------------------------------------------------------------------------------


def selected(objects: Objects, service: dict[str, Any]) -> list[dict[str, Any]]:
    """The pod templates a Service's selector matches."""
    selector = service["spec"]["selector"]
    return [
        o["spec"]["template"]
        for o in objects
        if o["kind"] == "Deployment"
        and selector.items() <= o["spec"]["template"]["metadata"]["labels"].items()
    ]


@pytest.mark.parametrize(
    ("service", "port", "deployment"),
    [
        ("cams-heron-facemask-control", {"name": "grpc", "port": 50051, "targetPort": "grpc",
                                          "protocol": "TCP", "appProtocol": "grpc"},
         "cams-heron-facemask-control"),
        ("cams-heron-facemask-detector", {"name": "grpc", "port": 50052, "targetPort": "grpc",
                                           "protocol": "TCP", "appProtocol": "grpc"},
         "cams-heron-facemask"),
        ("cams-heron-facemask-rtsp", {"name": "rtsp-8554", "port": 8554,
                                       "targetPort": "rtsp-8554", "protocol": "TCP"},
         "cams-heron-facemask"),
    ],
)  # fmt: skip
def test_services_reach_their_pod(
    facemask: Objects, service: str, port: dict[str, Any], deployment: str
) -> None:
    obj = find(facemask, "Service", service)

    assert obj["spec"]["type"] == "ClusterIP"
    assert obj["spec"]["ports"] == [port]
    (template_,) = selected(facemask, obj)
    assert template_ is find(facemask, "Deployment", deployment)["spec"]["template"]
    named = {p["name"] for c in template_["spec"]["containers"] for p in c["ports"]}
    assert port["targetPort"] in named


def test_an_engine_rollout_finds_the_pipelines_api_by_the_control_services_labels(
    facemask: Objects,
) -> None:
    """An EngineRollout narrows its selector to `heron.dev/api=pipeline` and calls the port named
    grpc (heron_operator.pipelines): only the control Service carries the label, and it has
    the port."""
    from heron_operator.pipelines import API_LABEL, API_VALUE, GRPC_PORT_NAME, PIPELINE_LABEL

    (service,) = [
        o for o in facemask if o["kind"] == "Service" and API_LABEL in o["metadata"]["labels"]
    ]
    assert service["metadata"]["name"] == "cams-heron-facemask-control"
    labels = service["metadata"]["labels"]
    assert (labels[API_LABEL], labels[PIPELINE_LABEL]) == (API_VALUE, "facemask")
    assert GRPC_PORT_NAME in [p["name"] for p in service["spec"]["ports"]]


def test_service_types_are_configurable(gpu: Objects) -> None:
    assert find(gpu, "Service", "cams-heron-facemask-rtsp")["spec"]["type"] == "LoadBalancer"
    assert find(gpu, "Service", "cams-heron-facemask-control")["spec"]["type"] == "ClusterIP"


# --- the config and the settings reach the pods ---------------------------------------------


def mounted_files(objects: Objects, deployment: str) -> dict[str, str]:
    """Every file of /etc/heron/pipeline in the pipeline pod, by its path there."""
    spec = pod(objects, deployment)
    volumes = {v["name"]: v for v in spec["volumes"]}
    source = volumes["pipeline"]["configMap"]
    data = find(objects, "ConfigMap", source["name"])["data"]
    (mount,) = {
        m["mountPath"] for c in spec["containers"] for m in c["volumeMounts"]
        if m["name"] == "pipeline"
    }  # fmt: skip
    assert set(data) == {item["key"] for item in source["items"]}
    return {f"{mount}/{item['path']}": data[item["key"]] for item in source["items"]}


@pytest.mark.parametrize(
    ("fixture", "folder"), [("facemask", "facemask"), ("cpu_only", "cpu-only")]
)
def test_the_config_reaches_the_pod_unchanged(
    fixture: str, folder: str, request: pytest.FixtureRequest
) -> None:
    objects: Objects = request.getfixturevalue(fixture)
    files = mounted_files(objects, f"cams-heron-{folder}")

    local = FIXTURES / folder
    shipped = {
        f"{POD_DIR}/{p.relative_to(local).as_posix()}": p.read_bytes()
        for p in local.rglob("*")
        if p.is_file()
    }
    assert {path: text.encode() for path, text in files.items()} == shipped


@pytest.mark.usefixtures("helm")
def test_odd_texts_reach_the_pod_byte_for_byte(chart_dir: Path, tmp_path: Path) -> None:
    source = FIXTURES / "cpu-only"
    text = (source / "cpu-only.txt").read_text()
    odd = "# café, tabs\tand trailing spaces  \r\n" + text.replace("\n", "\r\n").rstrip()
    (tmp_path / "odd.txt").write_bytes(odd.replace("detector.txt", "nets/detector.txt").encode())
    (tmp_path / "nets").mkdir()
    (tmp_path / "nets" / "detector.txt").write_bytes((source / "detector.txt").read_bytes())
    values, _ = helm_values([tmp_path / "odd.txt"], PlanOptions())
    path = tmp_path / "odd.yaml"
    path.write_text(dump_values(values))

    files = mounted_files(render(chart_dir, path), "cams-heron-odd")

    assert {k: v.encode() for k, v in files.items()} == {
        f"{POD_DIR}/odd.txt": (tmp_path / "odd.txt").read_bytes(),
        f"{POD_DIR}/nets/detector.txt": (source / "detector.txt").read_bytes(),
    }


def test_the_settings_are_the_plans(facemask: Objects) -> None:
    """One source of truth: what each service loads in the pod is the plan `heron config plan`
    makes for the same config, with what the pod runner adds (paths, ports, addresses)."""
    config = GENERATED["default-values.yaml"][0]
    result = runner.invoke(app, ["plan", str(config), "--pipeline", "facemask"])
    assert result.exit_code == 0, result.output
    plan = PipelinePlan.model_validate_json(result.stdout)
    settings_maps = [o for o in ours(facemask) if o["metadata"]["name"].endswith("-settings")]
    (settings_map,) = settings_maps
    files = settings_map["data"]

    assert sorted(files) == sorted(f"{s.service}.yaml" for s in plan.services)
    for service in plan.services:
        raw = files[f"{service.service}.yaml"]
        assert "redis" not in raw  # the URL comes from the environment, never a ConfigMap
        mounted = yaml.safe_load(raw.replace(POD_DIR, str(config.parent)))
        loaded = SETTINGS[service.service].model_validate(mounted)
        expected = decided(service.settings)
        expected["metrics"] = {"port": mounted["metrics"]["port"]}
        if "grpc" in expected:
            expected["grpc"]["listen"] = "0.0.0.0:" + expected["grpc"]["listen"].split(":")[1]
        if service.service == "overlay":
            expected["rtsp_address"] = "0.0.0.0"
        assert loaded == SETTINGS[service.service].model_validate(expected), service.service
        assert decided(loaded) == expected


def test_the_redis_url_comes_from_the_environment(facemask: Objects) -> None:
    everything = {**containers(facemask), **containers(facemask, "cams-heron-facemask-control")}

    for name, container in everything.items():
        env = {e["name"]: e for e in container["env"]}
        assert env["HERON_REDIS_URL"]["value"] == (
            "redis://:$(HERON_REDIS_PASSWORD)@cams-heron-redis:6379/0"
        ), name
        assert (
            env["HERON_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "cams-heron-redis"
        )
    for config_map in (o for o in ours(facemask) if o["kind"] == "ConfigMap"):
        assert "redis://" not in json.dumps(config_map)


def test_a_new_config_rolls_the_pods(helm: Path, chart_dir: Path, tmp_path: Path) -> None:
    before = render(chart_dir, CI / "cpu-only-values.yaml")
    values = values_file("cpu-only-values.yaml")
    values["pipelines"][0]["config"]["text"] += "\n"
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(values))

    after = render(chart_dir, changed)

    def checksums(objects: Objects) -> Iterator[str]:
        for o in objects:
            if o["kind"] == "Deployment" and "heron.dev/pipeline" in o["metadata"]["labels"]:
                yield o["spec"]["template"]["metadata"]["annotations"]["checksum/pipeline"]

    old, new = list(checksums(before)), list(checksums(after))
    assert len(old) == 2 and len(set(old)) == 1
    assert set(old).isdisjoint(new)


def test_triton_of_the_chart_serves_the_model(helm: Path, chart_dir: Path, tmp_path: Path) -> None:
    config = GENERATED["default-values.yaml"][0]
    options = PlanOptions(backend="triton", triton_model="facemask")
    values, _ = helm_values([config], options)
    path = tmp_path / "triton.yaml"
    path.write_text(dump_values(values))

    objects = render(chart_dir, path, set_values={"triton.enabled": "true"})

    env = {
        name: {e["name"]: e.get("value") for e in c["env"]}
        for name, c in containers(objects).items()
    }
    assert env["inference"]["HERON_BACKEND__URL"] == "cams-heron-triton:8001"
    assert [n for n, e in env.items() if "HERON_BACKEND__URL" in e] == ["inference"]
    # The plan itself keeps no URL: the inference service's default, overridden by the chart.
    settings = yaml.safe_load(find(objects, "ConfigMap", "cams-heron-facemask-settings")["data"]
                              ["inference.yaml"])  # fmt: skip
    assert settings["backend"] == {"kind": "triton", "model_name": "facemask"}


# --- values the schema refuses -------------------------------------------------------------------


def broken(tmp_path: Path, change: Any) -> Path:
    values = values_file("cpu-only-values.yaml")
    change(values["pipelines"][0])
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


SETTINGS_0 = "/plan/services/0/settings"


@pytest.mark.parametrize(
    ("change", "at", "said"),
    [
        (lambda p: p.pop("plan"), "", "missing property 'plan'"),
        (lambda p: p.pop("config"), "", "missing property 'config'"),
        (lambda p: p.update(plan="ingest"), "/plan", "got string, want object"),
        (lambda p: p["plan"].pop("services"), "/plan", "missing property 'services'"),
        (lambda p: p.update(bogus=1), "", "additional properties 'bogus' not allowed"),
        (lambda p: p["config"].update(file="../a"), "/config/file", "'../a' does not match"),
        (lambda p: p.update(name="Cams_1"), "/name", "'Cams_1' does not match"),
        (lambda p: p.update(name="redis"), "/name", "'not' failed"),
        (lambda p: p.update(gpu={"enabled": "yes"}), "/gpu/enabled", "got string, want boolean"),
        (lambda p: p["plan"]["services"][0]["settings"].update(redis_url="redis://x"),
         SETTINGS_0, "'not' failed"),
        (lambda p: p["plan"]["services"][0].update(service="decoder"),
         "/plan/services/0/service", "value must be one of"),
    ],
    ids=["no plan", "no config", "plan not an object", "plan without services", "unknown key",
         "config outside its folder", "name not a label", "reserved name", "gpu.enabled a string",
         "redis url in settings", "unknown service"],
)  # fmt: skip
@pytest.mark.usefixtures("helm")
def test_bad_pipeline_values_are_refused(
    chart_dir: Path, tmp_path: Path, change: Any, at: str, said: str
) -> None:
    with pytest.raises(HelmError) as caught:
        render(chart_dir, broken(tmp_path, change))

    assert "values don't meet the specifications of the schema" in caught.value.stderr
    assert f"- at '/pipelines/0{at}': {said}" in caught.value.stderr


def test_a_name_given_twice_is_refused(helm: Path, chart_dir: Path, tmp_path: Path) -> None:
    values = values_file("cpu-only-values.yaml")
    values["pipelines"].append(values["pipelines"][0])
    path = tmp_path / "twice.yaml"
    path.write_text(yaml.safe_dump(values))

    with pytest.raises(HelmError) as caught:
        render(chart_dir, path)

    assert 'the name "cpu-only" is given twice' in caught.value.stderr
