"""The EngineBuild controller, end to end: the real kopf operator against the API emulator, the
node agent running its Jobs (TensorRT-RTX plans really built on the CPU)."""

from __future__ import annotations

import contextlib
import importlib.util
from pathlib import Path
from typing import Any

import pytest
from heron_operator.jobs import GPU_RESOURCE
from heron_operator.settings import OperatorSettings

from tests.operator.conftest import (
    BUILDS,
    EVENTS,
    JOBS,
    OperatorThread,
    assert_rbac_grants,
    declare_resources,
    gpu_node,
    wait_for,
)
from tests.operator.node_agent import BuildOutcome, NodeAgent
from tests.support.kube_emulator import ApiError, EmulatorThread, KubeClient

Json = dict[str, Any]

needs_rtx = pytest.mark.skipif(
    importlib.util.find_spec("tensorrt_rtx") is None,
    reason="TensorRT-RTX is not installed: pip install tensorrt-rtx-cu12",
)
pytestmark = pytest.mark.usefixtures("running_operator")


# accuracyGate of an INT8 build from an ONNX file: the calibration images and the KITTI folder
# of the model volume (tests/operator/conftest.py's `models`).
GATE_DATA = {"calibrationImages": "/models/data/calib", "evalData": "/models/data/val"}


def engine_build(name: str, **spec: Any) -> Json:
    body: Json = {
        "apiVersion": "heron.dev/v1alpha1",
        "kind": "EngineBuild",
        "metadata": {"name": name},
        "spec": {
            "model": {"onnx": "/models/detector/model.onnx"},
            "modelName": "detector",
            "precision": "FP16",
            "batch": {"min": 1, "opt": 2, "max": 4},
            "modelRepository": {"claimName": "models", "subPath": "triton"},
            **spec,
        },
    }
    return body


def create(kube: KubeClient, namespace: str, body: Json) -> Json:
    return kube.create(BUILDS.format(ns=namespace), body)


def build_of(kube: KubeClient, namespace: str, name: str) -> Json:
    return kube.get(f"{BUILDS.format(ns=namespace)}/{name}")


def phase_is(kube: KubeClient, namespace: str, name: str, *phases: str) -> Json | None:
    build = build_of(kube, namespace, name)
    return build if (build.get("status") or {}).get("phase") in phases else None


def condition(build: Json, type_: str) -> Json:
    found = next(
        (c for c in (build.get("status") or {}).get("conditions") or [] if c["type"] == type_), None
    )
    return found or {}


def jobs_of(kube: KubeClient, namespace: str) -> dict[str, Json]:
    return {j["metadata"]["name"]: j for j in kube.list(JOBS.format(ns=namespace))}


def reasons(kube: KubeClient, namespace: str) -> list[str]:
    return [e["reason"] for e in kube.list(EVENTS.format(ns=namespace))]


@needs_rtx
def test_one_plan_per_gpu_product_and_the_rtx_plan(
    kube: KubeClient, namespace: str, models: Path
) -> None:
    created = create(kube, namespace, engine_build("detector-fp16"))
    done = wait_for(lambda: phase_is(kube, namespace, "detector-fp16", "Succeeded", "Failed"),
                    "the build to finish")  # fmt: skip
    status = done["status"]
    assert status["phase"] == "Succeeded", status
    version = status["version"]

    jobs = jobs_of(kube, namespace)
    gpu = {
        j["spec"]["template"]["spec"]["nodeSelector"]["nvidia.com/gpu.product"]: j
        for j in jobs.values()
        if j["metadata"]["labels"]["heron.dev/role"] == "gpu"
    }
    rtx = [j for j in jobs.values() if j["metadata"]["labels"]["heron.dev/role"] == "rtx"]
    assert sorted(gpu) == ["NVIDIA-A10", "NVIDIA-L4"] and len(rtx) == 1 and len(jobs) == 3
    for product, job in gpu.items():
        pod = job["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert container["resources"]["limits"][GPU_RESOURCE] == 1
        assert (
            container["image"]
            == "ghcr.io/heron-project/heron-engine:" + container["image"].split(":")[-1]
        )
        assert "--builder" in container["command"] and "tensorrt" in container["command"]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert job["spec"]["backoffLimit"] == 1 and job["spec"]["ttlSecondsAfterFinished"] > 0
        owner = job["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["uid"]) == ("EngineBuild", created["metadata"]["uid"])
        assert job["metadata"]["name"].startswith("detector-fp16-g1-gpu-" + product.lower())
    rtx_pod = rtx[0]["spec"]["template"]["spec"]
    assert "nodeSelector" not in rtx_pod
    assert GPU_RESOURCE not in rtx_pod["containers"][0]["resources"]["limits"]
    assert rtx_pod["containers"][0]["command"][-2:] == ["--targets", "sm86,sm89"]

    builds = {b["product"]: b for b in status["builds"]}
    assert {b["phase"] for b in builds.values()} == {"Succeeded"}
    assert builds["NVIDIA-A10"]["plan"] == f"detector/{version}/model_sm86.plan"
    assert builds["NVIDIA-L4"]["plan"] == f"detector/{version}/model_sm89.plan"
    # The TensorRT-RTX plan was really built, into a model of its own.
    assert builds["TensorRT-RTX"]["plan"] == f"detector_rtx/{version}/model_sm86_sm89.plan"
    plan = models / "triton" / builds["TensorRT-RTX"]["plan"]
    assert plan.stat().st_size > 10_000 and plan.with_suffix(".plan.json").is_file()
    assert 'platform: "tensorrt_plan"' in (models / "triton/detector_rtx/config.pbtxt").read_text()

    ready = condition(done, "Ready")
    assert (ready["status"], ready["reason"], ready["observedGeneration"]) == ("True", "Built", 1)
    assert condition(done, "Gated")["reason"] == "NotRequired"
    assert status["observedGeneration"] == 1
    wait_for(lambda: "Built" in reasons(kube, namespace), "the Built event")
    events = reasons(kube, namespace)
    assert events.count("JobCreated") == 3 and "BuildSucceeded" in events


@needs_rtx
def test_int8_is_gated_then_built_from_the_gated_model(
    kube: KubeClient, namespace: str, models: Path, agent: NodeAgent
) -> None:
    agent.script(namespace).gate_drops = {
        "TensorRT Q/DQ (S8S8)": 0.5,
        "ONNX Runtime CPU (U8S8)": 1.2,
    }
    cache = "/models/detector/calibration.bin"  # TAO's, say: what the CRD asks INT8 files for
    create(kube, namespace, engine_build(
        "detector-int8", precision="INT8", gpuProducts=["NVIDIA-L4"], accuracyGate=GATE_DATA,
        model={"onnx": "/models/detector/model.onnx", "calibrationCache": cache},
    ))  # fmt: skip
    done = wait_for(lambda: phase_is(kube, namespace, "detector-int8", "Succeeded", "Failed"),
                    "the INT8 build to finish", timeout=40)  # fmt: skip
    status = done["status"]
    assert status["phase"] == "Succeeded", status
    assert status["gate"]["passed"] is True and status["gate"]["apDrop"] == pytest.approx(0.012)
    assert condition(done, "Gated")["reason"] == "GatePassed"
    # Only the product asked for (as its node label spells it), plus RTX for SM 8.9.
    assert sorted(b["product"] for b in status["builds"]) == ["NVIDIA-L4", "TensorRT-RTX"]
    runs = {r.role: r for r in agent.runs if r.namespace == namespace}
    work = "/models/detector/heron-int8/detector-int8-g1"
    gate = runs["gate"].command
    assert gate[gate.index("--max-ap-drop") + 1] == "2"
    # The gate's data: spec.accuracyGate's paths, as they are (absolute, on the model volume).
    assert gate[gate.index("--images") + 1] == "/models/data/calib"
    assert gate[gate.index("--eval-data") + 1] == "/models/data/val"
    assert (
        runs["rtx"].command[runs["rtx"].command.index("--onnx") + 1]
        == f"{work}/model.int8.qdq.onnx"
    )
    assert runs["rtx"].command[runs["rtx"].command.index("--targets") + 1] == "sm89"
    # TensorRT (on the L4) takes the FP32 ONNX with the given cache, as TAO's converter does.
    gpu = runs["gpu"].command
    assert gpu[gpu.index("--onnx") + 1] == "/models/detector/model.onnx"
    assert gpu[gpu.index("--calib-cache") + 1] == cache
    plan = (
        models
        / "triton"
        / next(b["plan"] for b in status["builds"] if b["product"] == "TensorRT-RTX")
    )
    assert '"precision": "int8"' in plan.with_suffix(".plan.json").read_text()


@pytest.mark.parametrize("precision", ["FP32", "INT8"])
def test_the_model_for_onnx_runtime_is_published_as_the_same_version(
    kube: KubeClient, namespace: str, models: Path, agent: NodeAgent, precision: str
) -> None:
    """onnxRuntime: a Job on any node publishes the model CPU pipelines load (FP32: the ONNX as
    it is; INT8: the U8S8 model the gate calibrated) as the build's version of `<name>_onnx`."""
    name = f"detector-ort-{precision.lower()}"
    gate = {"accuracyGate": GATE_DATA} if precision == "INT8" else {}
    create(kube, namespace, engine_build(
        name, precision=precision, gpuProducts=["NVIDIA-L4"], rtx={"enabled": False},
        onnxRuntime={"enabled": True}, **gate,
    ))  # fmt: skip
    done = wait_for(lambda: phase_is(kube, namespace, name, "Succeeded", "Failed"),
                    "the build to finish", timeout=40)  # fmt: skip
    status = done["status"]
    assert status["phase"] == "Succeeded", status
    version = status["version"]
    builds = {b["product"]: b for b in status["builds"]}
    assert sorted(builds) == ["NVIDIA-L4", "ONNX Runtime"]
    assert builds["ONNX Runtime"]["plan"] == f"detector_onnx/{version}/model.onnx"
    assert "of detector and detector_onnx" in status["message"]
    job = next(
        j for j in jobs_of(kube, namespace).values()
        if j["metadata"]["labels"]["heron.dev/role"] == "onnx"
        and j["metadata"]["labels"]["heron.dev/engine-build"] == name
    )  # fmt: skip
    pod = job["spec"]["template"]["spec"]
    assert "nodeSelector" not in pod
    assert GPU_RESOURCE not in pod["containers"][0]["resources"]["limits"]
    published = models / "triton" / builds["ONNX Runtime"]["plan"]
    if precision == "FP32":
        source = models / "detector" / "model.onnx"
    else:
        source = models / f"detector/heron-int8/{name}-g1/model.int8.u8s8.onnx"
    assert published.read_bytes() == source.read_bytes()
    config = (models / "triton/detector_onnx/config.pbtxt").read_text()
    assert 'platform: "onnxruntime_onnx"' in config and "max_batch_size: 4" in config


def test_a_failed_accuracy_gate_stops_the_build(
    kube: KubeClient, namespace: str, agent: NodeAgent
) -> None:
    script = agent.script(namespace)
    script.gate_drops = {"TensorRT Q/DQ (S8S8)": 3.1, "ONNX Runtime CPU (U8S8)": 0.9}
    script.gate_calibrates = False
    create(kube, namespace, engine_build(
        "gated", precision="INT8", accuracyGate=GATE_DATA,
        model={"onnx": "/models/detector/model.onnx",
               "calibrationCache": "/models/detector/calibration.bin"},
    ))  # fmt: skip
    done = wait_for(lambda: phase_is(kube, namespace, "gated", "Failed", "Succeeded"),
                    "the gate to refuse", timeout=30)  # fmt: skip
    status = done["status"]
    assert status["phase"] == "Failed"
    assert status["gate"]["passed"] is False and status["gate"]["apDrop"] == pytest.approx(0.031)
    assert "3.10 mAP points, more than maxApDrop 2.00" in status["gate"]["message"]
    gated = condition(done, "Gated")
    assert (gated["status"], gated["reason"]) == ("False", "GateFailed")
    assert condition(done, "Ready")["status"] == "False"
    assert [
        j["metadata"]["labels"]["heron.dev/role"] for j in jobs_of(kube, namespace).values()
    ] == ["gate"]
    assert "builds" not in status or status["builds"] == []
    warnings = [e for e in kube.list(EVENTS.format(ns=namespace)) if e["type"] == "Warning"]
    assert any(e["reason"] == "GateFailed" for e in warnings)


def test_int8_from_a_file_without_the_gates_data_fails_naming_the_fields(
    kube: KubeClient, namespace: str
) -> None:
    """The CRD's CEL rule refuses it; an object the rule did not see gets a reason, no Job."""
    create(kube, namespace, engine_build(
        "no-gate-data", precision="INT8",
        accuracyGate={"calibrationImages": "/models/data/calib"},
        model={"onnx": "/models/detector/model.onnx",
               "calibrationCache": "/models/detector/calibration.bin"},
    ))  # fmt: skip
    done = wait_for(lambda: phase_is(kube, namespace, "no-gate-data", "Failed", "Succeeded"),
                    "MissingGateData")  # fmt: skip
    gated = condition(done, "Gated")
    assert (gated["status"], gated["reason"]) == ("False", "MissingGateData")
    assert gated["message"].startswith("INT8 from model.onnx needs accuracyGate.evalData:")
    assert jobs_of(kube, namespace) == {}


def test_a_spec_the_crd_refuses_fails_as_invalid(kube: KubeClient, namespace: str) -> None:
    """What the CRD's schema refuses, the operator refuses too (should an object get past
    it): a relative ONNX path, an upper-case model name."""
    create(kube, namespace, engine_build(
        "invalid", model={"onnx": "detector/model.onnx"}, modelName="Detector",
    ))  # fmt: skip
    done = wait_for(lambda: phase_is(kube, namespace, "invalid", "Failed", "Succeeded"),
                    "InvalidSpec")  # fmt: skip
    built = condition(done, "Built")
    assert (built["status"], built["reason"]) == ("False", "InvalidSpec")
    assert "spec.model.onnx: Value error, expected an absolute path" in built["message"]
    assert "spec.modelName: Value error, expected a model name" in built["message"]
    assert jobs_of(kube, namespace) == {}


def test_a_training_runs_model_is_built_once_it_has_succeeded(
    kube: KubeClient, namespace: str, agent: NodeAgent
) -> None:
    runs = f"/apis/heron.dev/v1alpha1/namespaces/{namespace}/trainingruns"
    # A TrainingRun the operator holds Pending (no Job): its spec's ConfigMap is not there.
    kube.create(runs, {"metadata": {"name": "facemask"}, "spec": {
        "taoSpec": {"configMapRef": {"name": "absent"}}, "dataset": {"claimName": "data"},
        "artifacts": {"claimName": "training-results"},
    }})  # fmt: skip
    create(kube, namespace, engine_build(
        "from-run", precision="INT8", model={"fromTrainingRun": "facemask"},
        gpuProducts=["NVIDIA-A10"], rtx={"enabled": False},
    ))  # fmt: skip
    waiting = wait_for(lambda: condition(b := build_of(kube, namespace, "from-run"), "Built").get(
        "reason") == "WaitingForTrainingRun" and b, "the wait for the TrainingRun")  # fmt: skip
    assert waiting["status"]["phase"] == "Pending"
    assert waiting["status"]["message"] == "TrainingRun facemask is Pending"
    assert jobs_of(kube, namespace) == {}
    # It succeeds: its claim is not the repository's, its INT8 model lost 1.1 points.
    artifacts = {"claimName": "training-results", "path": "runs/facemask",
                 "onnx": "runs/facemask/model.onnx",
                 "calibrationCache": "runs/facemask/calibration.bin"}  # fmt: skip
    kube.patch(f"{runs}/facemask/status", {"status": {
        "phase": "Succeeded", "observedGeneration": 1, "artifacts": artifacts,
        "int8": {"apDrop": 0.011},
    }})  # fmt: skip
    done = wait_for(lambda: phase_is(kube, namespace, "from-run", "Succeeded", "Failed"),
                    "the build of the TrainingRun's model")  # fmt: skip
    assert done["status"]["phase"] == "Succeeded", done["status"]
    gate = done["status"]["gate"]
    assert gate["passed"] is True and gate["apDrop"] == pytest.approx(0.011)
    assert gate["message"].startswith("TrainingRun facemask loses 1.10 mAP points, at most")
    (job,) = jobs_of(kube, namespace).values()  # no gate Job: the TrainingRun measured it
    pod = job["spec"]["template"]["spec"]
    command = pod["containers"][0]["command"]
    assert command[command.index("--onnx") + 1] == "/artifacts/runs/facemask/model.onnx"
    assert command[command.index("--calib-cache") + 1] == "/artifacts/runs/facemask/calibration.bin"
    claims = {
        v["name"]: v["persistentVolumeClaim"]
        for v in pod["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert claims == {"models": {"claimName": "models"},
                      "artifacts": {"claimName": "training-results", "readOnly": True}}  # fmt: skip


def test_a_spec_change_builds_a_new_version(kube: KubeClient, namespace: str) -> None:
    create(
        kube, namespace, engine_build("changed", rtx={"enabled": False}, gpuProducts=["NVIDIA-A10"])
    )
    first = wait_for(lambda: phase_is(kube, namespace, "changed", "Succeeded"), "the first build")
    old_jobs = set(jobs_of(kube, namespace))
    kube.patch(f"{BUILDS.format(ns=namespace)}/changed", {"spec": {"batch": {"max": 8}}})
    second = wait_for(
        lambda: (
            (b := phase_is(kube, namespace, "changed", "Succeeded"))
            and b["status"]["observedGeneration"] == 2
            and b
        ),
        "the second generation's build",
    )
    assert second["status"]["version"] > first["status"]["version"]
    (job,) = jobs_of(kube, namespace).values()  # generation 1's Job was deleted
    assert job["metadata"]["name"] not in old_jobs and "-g2-" in job["metadata"]["name"]
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[command.index("--max-batch") + 1] == "8"
    assert command[command.index("--version") + 1] == str(second["status"]["version"])


def test_a_product_no_node_has_waits_for_one(kube: KubeClient, namespace: str) -> None:
    create(kube, namespace, engine_build(
        "h100", gpuProducts=["NVIDIA H100 80GB HBM3", "NVIDIA-A10"], rtx={"enabled": False},
    ))  # fmt: skip
    waiting = wait_for(
        lambda: (
            condition(b := build_of(kube, namespace, "h100"), "Built").get("reason") == "NoSuchGPU"
            and b
        ),
        "NoSuchGPU",
    )
    built = condition(waiting, "Built")
    assert built["status"] == "False" and waiting["status"]["phase"] == "Pending"
    assert "no node has GPU product NVIDIA-H100-80GB-HBM3" in built["message"]
    assert "products on nodes: NVIDIA-A10, NVIDIA-L4" in built["message"]
    assert jobs_of(kube, namespace) == {}
    # A node of that product joins: the resync finds it and the build goes on.
    kube.create("/api/v1/nodes", gpu_node("gpu-h100-1", "NVIDIA-H100-80GB-HBM3", "9.0"))
    try:
        done = wait_for(lambda: phase_is(kube, namespace, "h100", "Succeeded", "Failed"),
                        "the build after the node joined")  # fmt: skip
    finally:
        kube.delete("/api/v1/nodes/gpu-h100-1")
    assert done["status"]["phase"] == "Succeeded"
    assert sorted(b["product"] for b in done["status"]["builds"]) == [
        "NVIDIA-A10",
        "NVIDIA-H100-80GB-HBM3",
    ]


def test_a_failing_build_job_fails_the_build_naming_the_product(
    kube: KubeClient, namespace: str, agent: NodeAgent
) -> None:
    agent.script(namespace).gpu["NVIDIA-L4"] = BuildOutcome(
        exit_code=1, error="error: TensorRT ran out of GPU memory building the plan"
    )
    create(kube, namespace, engine_build("oom", rtx={"enabled": False}))
    done = wait_for(lambda: phase_is(kube, namespace, "oom", "Failed", "Succeeded"), "the failure")
    status = done["status"]
    assert status["phase"] == "Failed"
    builds = {b["product"]: b for b in status["builds"]}
    assert builds["NVIDIA-L4"]["phase"] == "Failed"
    assert (
        builds["NVIDIA-L4"]["message"] == "error: TensorRT ran out of GPU memory building the plan"
    )
    built = condition(done, "Built")
    assert (built["status"], built["reason"]) == ("False", "BuildFailed")
    assert (
        "plan build failed for NVIDIA-L4" in built["message"]
        and "NVIDIA-A10" not in built["message"]
    )
    # backoffLimit 1: the pod ran twice before the Job failed.
    assert len([r for r in agent.runs if r.namespace == namespace and r.exit_code == 1]) == 2
    assert "BuildFailed" in wait_for(lambda: reasons(kube, namespace), "events")


def test_deleting_the_build_deletes_its_jobs(
    kube: KubeClient, namespace: str, agent: NodeAgent
) -> None:
    agent.script(namespace).gpu["NVIDIA-A10"] = BuildOutcome(delay_s=30)  # still running
    create(kube, namespace, engine_build("short-lived", rtx={"enabled": False}))
    wait_for(lambda: len(jobs_of(kube, namespace)) == 2, "two Jobs")
    build = build_of(kube, namespace, "short-lived")
    assert "heron.dev/operator" in build["metadata"]["finalizers"]
    kube.delete(f"{BUILDS.format(ns=namespace)}/short-lived")
    # The emulator has no garbage collector: the Jobs go because the finalizer deletes them.
    wait_for(lambda: jobs_of(kube, namespace) == {}, "the Jobs to be deleted")

    def gone() -> bool:
        try:
            build_of(kube, namespace, "short-lived")
        except ApiError as e:
            return e.status == 404
        return False

    wait_for(gone, "the build to be deleted")
    assert "JobsDeleted" in reasons(kube, namespace)


def test_two_replicas_with_peering_never_both_act() -> None:
    """Two replicas of one peering, each on its own port of one API server (the test on a
    third): only the older one acts; the other does not even watch EngineBuilds (kopf pauses
    it) until the first stops and leaves the peering, and then takes over."""
    with EmulatorThread(servers=3, setup=declare_resources) as cluster:
        kube = KubeClient(cluster.urls[0])
        kube.create("/api/v1/nodes", gpu_node("gpu-a10-1", "NVIDIA-A10", "8.6"))
        peering = "/apis/kopf.dev/v1/namespaces/vision/kopfpeerings"
        kube.create(peering, {"metadata": {"name": "heron-operator"}})
        port_a, port_b = (int(u.rsplit(":", 1)[1]) for u in cluster.urls[1:])

        def replica(url: str, identity: str) -> OperatorThread:
            settings = OperatorSettings(
                namespaces=["vision"], api_server=url, resync_s=1.0, retry_s=1.0
            )
            return OperatorThread(settings, identity=identity)

        def requests(port: int) -> list[tuple[str, str]]:
            """(action, plural) of the EngineBuild and Job requests that came through `port`."""

            def collect(emulator: Any) -> list[tuple[str, str]]:
                return [
                    (r.action.value, r.resource.plural) for r in emulator
                    if r.url.port == port and r.action is not None and r.resource is not None
                    and r.resource.plural in ("enginebuilds", "jobs")
                ]  # fmt: skip

            found: list[tuple[str, str]] = cluster.call(collect)
            return found

        def peers() -> set[str]:
            return set(kube.get(f"{peering}/heron-operator").get("status") or {})

        # As in a rolling update: b starts once a is in the peering (two replicas started at
        # the same instant may both act until they see each other: kopf's peering is no lease).
        with contextlib.ExitStack() as replicas:
            first = replicas.enter_context(replica(cluster.urls[1], "replica-a"))
            wait_for(lambda: peers() == {"replica-a"}, "a in the peering")
            replicas.enter_context(replica(cluster.urls[2], "replica-b"))
            wait_for(lambda: peers() == {"replica-a", "replica-b"}, "both in the peering")
            create(kube, "vision", engine_build("led", rtx={"enabled": False}))
            wait_for(lambda: phase_is(kube, "vision", "led", "Building"), "the leader's step")
            assert ("CREATE", "jobs") in requests(port_a)
            assert ("UPDATE", "enginebuilds") in requests(port_a)
            assert requests(port_b) == []  # paused: no list, no watch, no write

            first.stop()  # a clean stop removes replica-a from the peering: b resumes
            create(kube, "vision", engine_build("followed", rtx={"enabled": False}))
            wait_for(lambda: phase_is(kube, "vision", "followed", "Building"), "b's step")
            assert ("WATCH", "enginebuilds") in requests(port_b)
            assert ("CREATE", "jobs") in requests(port_b)
            assert len(jobs_of(kube, "vision")) == 2
        # kopf's peering included, the chart's RBAC granted every request of either replica.
        for url in cluster.urls[1:]:
            assert_rbac_grants(cluster, url, peering=True)
