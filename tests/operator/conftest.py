"""The operator under test: the real kopf operator (heron_operator.run) in a thread, against the
Kubernetes API emulator (tests/support/kube_emulator.py) on a free port, with a node agent
(node_agent.py) that runs the Jobs it creates; a cluster of three GPU nodes (two products) and
a CPU node."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from heron_operator.run import operator
from heron_operator.settings import OperatorSettings

from tests.operator import rbac
from tests.operator.node_agent import NodeAgent
from tests.support.kube_emulator import EmulatorThread, KubeClient, KubeEmulator, accesses

T = TypeVar("T")
Json = dict[str, Any]

BUILDS = "/apis/heron.dev/v1alpha1/namespaces/{ns}/enginebuilds"
JOBS = "/apis/batch/v1/namespaces/{ns}/jobs"
EVENTS = "/api/v1/namespaces/{ns}/events"
# name: (product, compute capability)
GPU_NODES = {
    "gpu-a10-1": ("NVIDIA-A10", "8.6"),
    "gpu-a10-2": ("NVIDIA-A10", "8.6"),
    "gpu-l4-1": ("NVIDIA-L4", "8.9"),
}


def declare_resources(emulator: KubeEmulator) -> None:
    """What the chart's CRDs declare: EngineBuild (with its status subresource) and kopf's
    peering resources."""
    emulator.add_resource("heron.dev/v1alpha1/enginebuilds", "EngineBuild")
    emulator.add_resource("heron.dev/v1alpha1/trainingruns", "TrainingRun")
    emulator.add_resource("heron.dev/v1alpha1/enginerollouts", "EngineRollout")
    emulator.add_resource("kopf.dev/v1/kopfpeerings", "KopfPeering", status=False)
    emulator.add_resource(
        "kopf.dev/v1/clusterkopfpeerings", "ClusterKopfPeering", namespaced=False, status=False
    )


def gpu_node(name: str, product: str, cc: str) -> Json:
    major, minor = cc.split(".")
    labels = {
        "kubernetes.io/hostname": name,
        "nvidia.com/gpu.product": product,
        "nvidia.com/gpu.compute.major": major,
        "nvidia.com/gpu.compute.minor": minor,
    }
    return {"metadata": {"name": name, "labels": labels}}


def wait_for(check: Callable[[], T | None], what: str, timeout: float = 20.0) -> T:
    """Poll `check` until it gives something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


class OperatorThread:
    """`heron_operator.run.operator` in a thread, stopped by its stop flag."""

    def __init__(self, settings: OperatorSettings, identity: str = "test-operator") -> None:
        self.settings, self.identity = settings, identity
        self._stop, self._ready = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name=identity, daemon=True)
        self.failure: BaseException | None = None

    def _run(self) -> None:
        try:
            asyncio.run(
                operator(
                    self.settings,
                    stop_flag=self._stop,
                    ready_flag=self._ready,
                    identity=self.identity,
                )
            )
        except BaseException as e:
            self.failure = e

    def __enter__(self) -> OperatorThread:
        self._thread.start()
        if not self._ready.wait(15):
            raise RuntimeError(f"the operator did not start: {self.failure!r}")
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(20)

    def __exit__(self, *_: object) -> None:
        self.stop()


def write_detector(path: Path) -> Path:
    """A tiny DetectNet_v2-shaped ONNX (two stride-2 convolutions, coverage and box heads,
    dynamic batch) made with onnx.helper: no torch, built in milliseconds."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)

    def weights(name: str, shape: tuple[int, ...]) -> Any:
        return numpy_helper.from_array(rng.normal(0, 0.3, shape).astype(np.float32), name)

    nodes, inits, x, channels = [], [], "input_1", 3
    for i, width in enumerate((8, 16)):
        inits += [weights(f"c{i}_w", (width, channels, 3, 3))]
        nodes += [
            helper.make_node("Conv", [x, f"c{i}_w"], [f"c{i}"], name=f"conv{i}", strides=[2, 2],
                             pads=[1, 1, 1, 1]),
            helper.make_node("Relu", [f"c{i}"], [f"r{i}"], name=f"relu{i}"),
        ]  # fmt: skip
        x, channels = f"r{i}", width
    inits += [weights("cov_w", (2, channels, 1, 1)), weights("bbox_w", (8, channels, 1, 1))]
    nodes += [
        helper.make_node("Conv", [x, "cov_w"], ["cov"], name="cov"),
        helper.make_node("Sigmoid", ["cov"], ["output_cov/Sigmoid"], name="sigmoid"),
        helper.make_node("Conv", [x, "bbox_w"], ["output_bbox/BiasAdd"], name="bbox"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny-detectnet",
        [helper.make_tensor_value_info("input_1", TensorProto.FLOAT, ["batch", 3, 64, 96])],
        [
            helper.make_tensor_value_info(
                "output_cov/Sigmoid", TensorProto.FLOAT, ["batch", 2, 16, 24]
            ),
            helper.make_tensor_value_info(
                "output_bbox/BiasAdd", TensorProto.FLOAT, ["batch", 8, 16, 24]
            ),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model volume: `detector/model.onnx`, 8 calibration images, an (empty) KITTI folder."""
    import cv2

    root = tmp_path_factory.mktemp("models")
    write_detector(root / "detector" / "model.onnx")
    images = root / "data" / "calib"
    images.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(8):
        cv2.imwrite(str(images / f"{i}.png"), rng.integers(0, 256, (64, 96, 3), dtype=np.uint8))
    (root / "data" / "val").mkdir()
    return root


@pytest.fixture(scope="module")
def cluster() -> Iterator[EmulatorThread]:
    """The API server: the tests' own calls on urls[0], the operator's on urls[1]."""
    with EmulatorThread(servers=2, setup=declare_resources) as cluster:
        kube = KubeClient(cluster.url)
        for name, (product, cc) in GPU_NODES.items():
            kube.create("/api/v1/nodes", gpu_node(name, product, cc))
        kube.create("/api/v1/nodes", {"metadata": {"name": "cpu-1", "labels": {}}})
        yield cluster


@pytest.fixture(scope="module")
def kube(cluster: EmulatorThread) -> KubeClient:
    return KubeClient(cluster.url)


@pytest.fixture(scope="module")
def agent(cluster: EmulatorThread, models: Path) -> Iterator[NodeAgent]:
    with NodeAgent(cluster.url, models) as agent:
        assert cluster.emulator is not None
        cluster.emulator.log_source = agent.pod_log  # the kubelet's logs, served as pods/log
        yield agent


@pytest.fixture(scope="module")
def running_operator(cluster: EmulatorThread, agent: NodeAgent) -> Iterator[OperatorThread]:
    """The operator on its own port; when the module is done, every request it made there is
    one the chart's RBAC grants (tests/operator/rbac.py)."""
    settings = OperatorSettings(
        api_server=cluster.urls[1], standalone=True, resync_s=1.0, retry_s=1.0, backoff_limit=1
    )
    with OperatorThread(settings) as running:
        yield running
    assert_rbac_grants(cluster, cluster.urls[1], peering=False)


def assert_rbac_grants(cluster: EmulatorThread, url: str, *, peering: bool) -> None:
    """Every request that came in on `url`'s port is granted by the operator's ClusterRoles as
    the chart renders them (skipped without helm)."""
    if not rbac.have_helm():
        return
    port = int(url.rsplit(":", 1)[1])
    made = [a for a in cluster.call(accesses) if a.port == port]
    assert made, "the operator made no request"
    assert rbac.denied(made, rbac.chart_rules(peering=peering)) == []


@pytest.fixture
def namespace(request: pytest.FixtureRequest) -> str:
    """A namespace of the test's own (the operator serves all of them)."""
    return re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[-40:].strip("-")
