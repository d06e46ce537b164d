"""EngineRollout end to end, every part real: the kopf operator against the API emulator; a
`heron run` pipeline (two live cameras, Redis, ONNX Runtime inference, the Pipeline gRPC API)
behind a control Service; a Prometheus scraping its ingest and inference; and each new version
built by an EngineBuild whose Job (`heron publish-onnx`, run by the node agent) publishes it
into the model repository the pipeline's inference loads versions from.

A version like the serving one is promoted after its soak; a version whose detections collapse
is rolled back by the detection-rate gate; a rollout deleted mid-canary puts its streams back.
Throughout, every frame either camera published gets its metadata, once, in order, from the
version its stream was routed to at the time."""

from __future__ import annotations

import json
import re
import shutil
import signal
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from heron.client import Client
from heron.v1 import control_pb2 as pb
from heron_operator.settings import OperatorSettings

from tests.e2e.harness import Output, heron_run
from tests.e2e.model import write_detector
from tests.inference.conftest import NET_H, NET_W, write_nvinfer
from tests.operator.conftest import BUILDS, EVENTS, OperatorThread, wait_for
from tests.support.kube_emulator import EmulatorThread, KubeClient
from tests.support.kube_schemas import crd_schemas_from_crds, validate
from tests.support.prometheus_server import PrometheusServer, PrometheusUnavailableError, Target
from tests.support.redis_server import free_port

Json = dict[str, Any]
pytestmark = pytest.mark.slow

NAMESPACE = "video"
PIPELINE = "facemask"
ROLLOUTS = "/apis/heron.dev/v1alpha1/namespaces/{ns}/enginerollouts"
SERVICES = "/api/v1/namespaces/{ns}/services"
CRD = yaml.safe_load(
    (Path(__file__).parents[2] / "charts/heron/crds/enginerollouts.heron.dev.yaml").read_text()
)
GRPC_LINE = re.compile(r"^gRPC: .*?(127\.0\.0\.1:\d+) \(Pipeline, Detections\)")
FPS = 8
LIVE = f"lavfi://testsrc2=size=320x240:rate={FPS},realtime"
STABLE = "1"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model volume: the serving model as version 1 of `det_onnx` in the Triton repository
    (`triton/`), and the ONNX files the EngineBuilds publish: `good` (the same network) and
    `collapsed` (its coverage head biased so far down that it never detects anything). The
    serving model's box head gives every cell a small valid box, so that the objects of a frame
    are its cells above the threshold: many per frame, enough for the detection-rate gate to
    tell a collapse from noise within seconds."""
    root = tmp_path_factory.mktemp("models")
    serving = root / "triton" / "det_onnx" / STABLE / "model.onnx"
    serving.parent.mkdir(parents=True)
    write_detector(serving, NET_H, NET_W)
    _set_heads(serving, serving, {"output_bbox/BiasAdd.w": 0.0, "output_bbox/BiasAdd.b": 0.3})
    (root / "detector").mkdir()
    shutil.copy(serving, root / "detector" / "good.onnx")
    _set_heads(serving, root / "detector" / "collapsed.onnx", {"cov.b": -30.0})
    return root


def _set_heads(source: Path, target: Path, values: dict[str, float]) -> None:
    """`source` with the named initializers set to one value each, saved as `target`."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(source))
    for tensor in model.graph.initializer:
        if tensor.name in values:
            shape = numpy_helper.to_array(tensor).shape
            filled = np.full(shape, values[tensor.name], np.float32)
            tensor.CopyFrom(numpy_helper.from_array(filled, tensor.name))
    onnx.save(model, str(target))


@dataclass(frozen=True)
class Pipeline:
    target: str  # the Pipeline gRPC API's host:port
    metrics: dict[str, str]  # service -> host:port of its /metrics


def write_app(folder: Path, models: Path) -> Path:
    """Two live cameras, a muxer batching both, the detector from the repository's version 1."""
    nvinfer = write_nvinfer(folder, models / "triton" / "det_onnx" / STABLE / "model.onnx")
    sources = "".join(f"[source{i}]\nenable=1\ntype=2\nuri={LIVE}\n\n" for i in range(2))
    path = folder / "app.txt"
    path.write_text(
        f"{sources}[streammux]\nlive-source=1\nbatch-size=2\nwidth={NET_W * 2}\n"
        f"height={NET_H * 2}\nbatched-push-timeout=40000\n\n"
        f"[primary-gie]\nenable=1\nconfig-file={nvinfer}\n\n[sink0]\nenable=1\ntype=1\n"
    )
    return path


@pytest.fixture(scope="module")
def pipeline(models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    folder = tmp_path_factory.mktemp("pipeline")
    run_dir = folder / "run"
    proc = heron_run(write_app(folder, models), run_dir, "--pipeline", PIPELINE)
    out = Output(proc)
    try:
        target = out.wait_for(GRPC_LINE, timeout=60).group(1)
        metrics = {
            name: "127.0.0.1:{port}".format(
                **json.loads((run_dir / f"{name}.json").read_text())["metrics"]
            )
            for name in ("ingest", "inference")
        }
        with Client(target) as client:
            wait_for(lambda: _playing(client), "both cameras playing", timeout=60)
        yield Pipeline(target, metrics)
    finally:
        proc.terminate()
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM, "\n".join(out.rest())


def _playing(client: Client) -> bool:
    try:
        sources = client.list_sources()
    except Exception:  # starting: the control service has no report yet
        return False
    return len([s for s in sources if s.state == pb.SOURCE_STATE_PLAYING]) == 2


@pytest.fixture(scope="module")
def prometheus(pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    labels = {"namespace": NAMESPACE, "heron_dev_pipeline": PIPELINE}
    targets = [Target(name, address, labels) for name, address in pipeline.metrics.items()]
    try:
        server = PrometheusServer(tmp_path_factory.mktemp("prometheus"), targets)
    except PrometheusUnavailableError as e:
        pytest.skip(str(e))
    with server:
        yield server.url


@pytest.fixture(scope="module")
def rollout_operator(
    cluster: EmulatorThread, agent: Any, pipeline: Pipeline, prometheus: str
) -> Iterator[OperatorThread]:
    """The operator with the gates read quickly (the soak itself is the CRD's 1 m minimum)."""
    kube = KubeClient(cluster.url)
    host, port = pipeline.target.rsplit(":", 1)
    kube.create(SERVICES.format(ns=NAMESPACE), {
        "metadata": {"name": f"cams-{PIPELINE}-control",
                     "labels": {"heron.dev/pipeline": PIPELINE, "heron.dev/api": "pipeline"}},
        "spec": {"clusterIP": host, "ports": [{"name": "grpc", "port": int(port)}]},
    })  # fmt: skip
    settings = OperatorSettings(
        api_server=cluster.url, standalone=True, resync_s=1.0, retry_s=1.0, rollout_poll_s=1.0,
        prometheus_url=prometheus, gate_window_s=10, gate_min_window_s=4,
        metrics_port=free_port(),
    )  # fmt: skip
    with OperatorThread(settings) as running:
        yield running


@pytest.fixture
def kube(cluster: EmulatorThread, rollout_operator: OperatorThread) -> KubeClient:
    return KubeClient(cluster.url)


# --- helpers ---------------------------------------------------------------------------------


def build_version(kube: KubeClient, name: str, onnx: str) -> str:
    """An EngineBuild of `onnx` for ONNX Runtime (and the L4's stand-in plan); its version."""
    kube.create(BUILDS.format(ns=NAMESPACE), {
        "apiVersion": "heron.dev/v1alpha1", "kind": "EngineBuild", "metadata": {"name": name},
        "spec": {
            "model": {"onnx": f"/models/detector/{onnx}"}, "modelName": "det", "precision": "FP32",
            "gpuProducts": ["NVIDIA-L4"], "rtx": {"enabled": False},
            "onnxRuntime": {"enabled": True},
            "modelRepository": {"claimName": "models", "subPath": "triton"},
        },
    })  # fmt: skip
    built = wait_for(lambda: _phase(kube, BUILDS, name, "Succeeded", "Failed"), f"{name} built",
                     timeout=60)  # fmt: skip
    assert built["status"]["phase"] == "Succeeded", built["status"]
    return str(built["status"]["version"])


def roll_out(kube: KubeClient, name: str, build: str, **spec: Any) -> Json:
    return kube.create(ROLLOUTS.format(ns=NAMESPACE), {
        "apiVersion": "heron.dev/v1alpha1", "kind": "EngineRollout", "metadata": {"name": name},
        "spec": {"engineBuild": build,
                 "selector": {"matchLabels": {"heron.dev/pipeline": PIPELINE}}, **spec},
    })  # fmt: skip


def _phase(kube: KubeClient, kind: str, name: str, *phases: str) -> Json | None:
    found = kube.get(f"{kind.format(ns=NAMESPACE)}/{name}")
    if kind == ROLLOUTS:  # every status the operator writes is one the API server keeps whole
        assert crd_errors(found) == [], found.get("status")
    return found if (found.get("status") or {}).get("phase") in phases else None


def crd_errors(rollout: Json) -> list[str]:
    """What the API server would refuse of this EngineRollout (strict: unknown fields too,
    which a real one would prune)."""
    body = {k: v for k, v in rollout.items() if k in ("apiVersion", "kind", "spec", "status")}
    body["metadata"] = {"name": rollout["metadata"]["name"]}
    return validate(body, "1.33", crd_schemas=crd_schemas_from_crds([CRD]))


def condition(obj: Json, type_: str) -> Json:
    return next((c for c in obj["status"].get("conditions") or [] if c["type"] == type_), {})


def events_of(kube: KubeClient, name: str) -> list[tuple[str, str]]:
    return [
        (e["type"], e["reason"])
        for e in kube.list(EVENTS.format(ns=NAMESPACE))
        if e["involvedObject"]["name"] == name and e["involvedObject"]["kind"] == "EngineRollout"
    ]


def routing(target: str) -> pb.ModelVersions:
    with Client(target) as client:
        return client.get_model_versions()


def metadata_versions(target: str) -> dict[str, list[tuple[int, str]]]:
    """Every frame of both cameras out of the last stage so far, from the oldest: (frame
    number, model version), per stream; read until each stream reaches what its camera had
    published when this began (a little after the last change: ingest reports its counts
    every second, and frames take a moment to get through)."""
    time.sleep(2.5)
    with Client(target) as client:
        published = {s.source.stream_id: s.frames for s in client.list_sources()}
        seen: dict[str, list[tuple[int, str]]] = {s: [] for s in published}
        with client.subscribe(from_oldest=True) as events:
            for event in events:
                frame = event.frame
                stream = frame.frame.stream_id
                seen[stream].append((frame.frame.frame_number, frame.model_version))
                if all(len(seen[s]) >= n for s, n in published.items()):
                    break
    return seen


def assert_every_frame_once(seen: dict[str, list[tuple[int, str]]]) -> None:
    for stream, frames in seen.items():
        numbers = [n for n, _ in frames]
        assert numbers == list(range(len(numbers))), f"{stream}: frames lost or repeated"


def operator_metrics(running: OperatorThread) -> dict[str, float]:
    """The operator's /metrics, parsed: `name{labels}` → value."""
    from prometheus_client.parser import text_string_to_metric_families

    url = f"http://127.0.0.1:{running.settings.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    return {
        series(sample.name, **sample.labels): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def series(name: str, **labels: str) -> str:
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def switches(frames: list[tuple[int, str]]) -> list[str]:
    """The versions a stream ran, in order, each once per stretch."""
    out: list[str] = []
    for _, version in frames:
        if not out or out[-1] != version:
            out.append(version)
    return out


# --- the tests -------------------------------------------------------------------------------


def test_a_version_as_good_as_the_stable_one_is_promoted(
    kube: KubeClient, pipeline: Pipeline
) -> None:
    version = build_version(kube, "det-good", "good.onnx")
    roll_out(kube, "det-good", "det-good", canary={"streams": {"percent": 50}}, soak="1m")
    canary = wait_for(lambda: _phase(kube, ROLLOUTS, "det-good", "Canary", "RollingBack",
                                     "RolledBack", "Failed"), "the canary", timeout=60)  # fmt: skip
    status = canary["status"]
    assert status["phase"] == "Canary", status
    assert (status["stableVersion"], status["canaryVersion"]) == (STABLE, version)
    assert (status["canaryStreams"], status["totalStreams"]) == (1, 2)
    assert status["pipelines"] == [PIPELINE]
    (target,) = status["targets"]
    assert target["canaryStreams"] == ["source-0"]
    assert dict(routing(pipeline.target).stream_versions) == {"source-0": version}

    done = wait_for(lambda: _phase(kube, ROLLOUTS, "det-good", "Promoted", "RolledBack", "Failed"),
                    "the promotion", timeout=150)  # fmt: skip
    status = done["status"]
    assert status["phase"] == "Promoted", (status.get("message"), status.get("gates"))
    assert condition(done, "Ready")["status"] == "True"
    assert condition(done, "CanaryHealthy")["reason"] == "GatesHeld"
    gates = status["gates"]
    assert gates["passed"] is True
    assert gates["fpsRatio"] >= 0.95 and gates["errorRate"] == 0.0
    assert gates["detectionRateDrift"] <= 0.2
    now = routing(pipeline.target)
    assert (now.default_version, dict(now.stream_versions)) == (version, {})
    assert list(now.loaded) == [STABLE, version] or version in now.loaded
    seen = metadata_versions(pipeline.target)
    assert_every_frame_once(seen)
    assert switches(seen["source-0"]) == [STABLE, version]  # the canary, then everyone
    assert switches(seen["source-1"]) == [STABLE, version]
    reasons = [r for _, r in events_of(kube, "det-good")]
    assert {"Planned", "CanaryStarted", "Promoted"} <= set(reasons)


def test_a_version_whose_detections_collapse_is_rolled_back(
    kube: KubeClient, pipeline: Pipeline, rollout_operator: OperatorThread
) -> None:
    stable = routing(pipeline.target).default_version or STABLE  # what the last test promoted
    version = build_version(kube, "det-collapsed", "collapsed.onnx")
    roll_out(kube, "det-collapsed", "det-collapsed", canary={"streams": {"count": 1}}, soak="10m")
    done = wait_for(lambda: _phase(kube, ROLLOUTS, "det-collapsed", "RolledBack", "Promoted",
                                   "Failed"), "the rollback", timeout=90)  # fmt: skip
    status = done["status"]
    assert status["phase"] == "RolledBack", status
    assert status["rollbackReason"] == "GateFailed"
    assert status["gates"]["detectionRateDrift"] == pytest.approx(1.0)
    assert "detectionRateDrift" in status["gates"]["message"]
    assert condition(done, "CanaryHealthy")["status"] == "False"
    now = routing(pipeline.target)
    assert (now.default_version, dict(now.stream_versions)) == (stable, {})
    assert version not in now.loaded  # unloaded once nothing runs it
    seen = metadata_versions(pipeline.target)
    assert_every_frame_once(seen)
    assert switches(seen["source-0"])[-3:] == [stable, version, stable]
    assert version not in switches(seen["source-1"])  # never on the canary
    assert ("Warning", "GateFailed") in events_of(kube, "det-collapsed")
    # What the operator exports says so too (docs/observability.md, "Operator metrics").
    exported = operator_metrics(rollout_operator)
    ours = {"namespace": NAMESPACE, "rollout": "det-collapsed"}
    assert exported[series("heron_operator_rollout_phase", phase="RolledBack", **ours)] == 1.0
    assert exported[series("heron_operator_rollout_phase", phase="Canary", **ours)] == 0.0
    broken = "heron_operator_rollout_gate_broken"
    assert exported[series(broken, gate="detectionRateDrift", **ours)] == 1.0
    assert exported[series(broken, gate="fpsRatio", **ours)] == 0.0


def test_a_rollout_deleted_mid_canary_puts_its_streams_back(
    kube: KubeClient, pipeline: Pipeline
) -> None:
    stable = routing(pipeline.target).default_version or STABLE
    version = build_version(kube, "det-again", "good.onnx")
    roll_out(kube, "det-again", "det-again", canary={"streams": {"count": 1}}, soak="10m")
    wait_for(lambda: _phase(kube, ROLLOUTS, "det-again", "Canary"), "the canary", timeout=60)
    assert dict(routing(pipeline.target).stream_versions) == {"source-0": version}
    kube.delete(f"{ROLLOUTS.format(ns=NAMESPACE)}/det-again")
    wait_for(lambda: not dict(routing(pipeline.target).stream_versions), "the stable routing")
    now = routing(pipeline.target)
    assert now.default_version == stable and version not in now.loaded
    assert_every_frame_once(metadata_versions(pipeline.target))


@pytest.mark.parametrize(("action", "ends"), [("Abort", "RolledBack"), ("Promote", "Promoted")])
def test_a_manual_decision_ends_the_soak_at_once(
    kube: KubeClient, pipeline: Pipeline, action: str, ends: str
) -> None:
    stable = routing(pipeline.target).default_version or STABLE
    name = f"det-{action.lower()}"
    version = build_version(kube, name, "good.onnx")
    roll_out(kube, name, name, canary={"streams": {"count": 1}}, soak="168h")
    wait_for(lambda: _phase(kube, ROLLOUTS, name, "Canary"), "the canary", timeout=60)
    kube.patch(f"{ROLLOUTS.format(ns=NAMESPACE)}/{name}", {"spec": {"action": action}})
    done = wait_for(lambda: _phase(kube, ROLLOUTS, name, "Promoted", "RolledBack", "Failed"),
                    f"the rollout to end on {action}", timeout=30)  # fmt: skip
    assert done["status"]["phase"] == ends, done["status"]
    now = routing(pipeline.target)
    expected = stable if action == "Abort" else version
    assert (now.default_version, dict(now.stream_versions)) == (expected, {})
    if action == "Abort":
        assert done["status"]["rollbackReason"] == "Aborted"
    assert_every_frame_once(metadata_versions(pipeline.target))
