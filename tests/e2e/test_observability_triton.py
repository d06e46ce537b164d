"""The Triton panels and rule of docs/observability.md against a real tritonserver (the
nvidia-pytriton wheel's, on the CPU: tests/support/triton_server.py) scraped by a real
Prometheus with charts/heron/rules/heron.rules.yaml, as the chart's ServiceMonitor would
(`job="heron-triton"`, `namespace`).

Triton's per-model counters (`nv_inference_queue_duration_us`, `nv_inference_request_success`)
need no GPU: the recording rule `model_version:nv_inference_queue_seconds_per_request:rate1m`
and the Inference dashboard's "Triton queue time per request" answer from a CPU server under
load. Only the GPU utilisation panel (DCGM, `nv_gpu_utilization`) needs a GPU node.
"""

from __future__ import annotations

import shutil
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO
from tests.support.dashboards import panels, resolve
from tests.support.prometheus_server import PrometheusServer, PrometheusUnavailableError, Target
from tests.support.triton_server import TritonServer, TritonUnavailableError

pytestmark = pytest.mark.slow

RULES = REPO / "charts" / "heron" / "rules" / "heron.rules.yaml"
NAMESPACE = "e2e"
MODEL = "echo"
RECORD = "model_version:nv_inference_queue_seconds_per_request:rate1m"
QUEUE_PANEL = "Triton queue time per request"

# A python-backend model that returns its input (through DLPack: with numpy 2, as_numpy() in the
# wheel's backend reads zeros; ../shared/NOTES.md).
MODEL_PY = """
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        out = []
        for r in requests:
            x = pb_utils.get_input_tensor_by_name(r, "x")
            y = pb_utils.Tensor.from_dlpack("y", x.to_dlpack())
            out.append(pb_utils.InferenceResponse([y]))
        return out
"""
CONFIG = f"""name: "{MODEL}"
backend: "python"
max_batch_size: 8
input [ {{ name: "x" data_type: TYPE_FP32 dims: [ 4 ] }} ]
output [ {{ name: "y" data_type: TYPE_FP32 dims: [ 4 ] }} ]
instance_group [ {{ kind: KIND_CPU count: 1 }} ]
"""


def write_model(repository: Path) -> None:
    (repository / MODEL / "1").mkdir(parents=True)
    (repository / MODEL / "config.pbtxt").write_text(CONFIG)
    (repository / MODEL / "1" / "model.py").write_text(MODEL_PY)


def load(server: TritonServer, stop: threading.Event) -> None:
    """About 50 requests a second until `stop`."""
    import tritonclient.grpc as grpcclient  # type: ignore[import-untyped,unused-ignore]

    client = grpcclient.InferenceServerClient(server.grpc_url)
    try:
        while not stop.is_set():
            x = grpcclient.InferInput("x", [1, 4], "FP32")
            x.set_data_from_numpy(np.ones((1, 4), np.float32))
            client.infer(MODEL, [x])
            stop.wait(0.02)
    finally:
        client.close()


@pytest.fixture(scope="module")
def triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    root = tmp_path_factory.mktemp("triton")
    write_model(root / "models")
    try:
        server = TritonServer(root / "models", root, extra_args=["--allow-metrics=true"])
    except TritonUnavailableError as e:
        pytest.skip(str(e))
    server.start()
    stop = threading.Event()
    thread = threading.Thread(target=load, args=(server, stop), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        thread.join(10)
        server.stop()


@pytest.fixture(scope="module")
def prometheus(
    tmp_path_factory: pytest.TempPathFactory, triton: TritonServer
) -> Iterator[PrometheusServer]:
    if shutil.which("prometheus") is None:
        pytest.skip(
            "prometheus is not installed: apt-get install --no-install-recommends prometheus"
        )
    target = Target("heron-triton", f"127.0.0.1:{triton.metrics_port}", {"namespace": NAMESPACE})
    try:
        server = PrometheusServer(
            tmp_path_factory.mktemp("prometheus"), [target], rule_files=[RULES]
        )
        with server:
            yield server
    except PrometheusUnavailableError as e:
        pytest.skip(str(e))


def test_the_cpu_tritonserver_exports_the_per_model_counters(triton: TritonServer) -> None:
    deadline = time.monotonic() + 10
    while True:
        url = f"http://127.0.0.1:{triton.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:
            body = r.read().decode()
        lines = body.splitlines()
        if any(line.startswith("nv_inference_request_success{") for line in lines):
            break
        assert time.monotonic() < deadline, body
        time.sleep(0.5)
    for name in ("nv_inference_queue_duration_us", "nv_inference_request_success"):
        assert any(line.startswith(f'{name}{{model="{MODEL}",version="1"}}') for line in lines)


def test_the_queue_time_rule_and_panel_answer_from_a_cpu_triton(
    prometheus: PrometheusServer,
) -> None:
    (panel,) = [p for p in panels() if p.title == QUEUE_PANEL]
    queries = [resolve(expr, NAMESPACE) for expr in panel.exprs]
    deadline = time.monotonic() + 45  # first scrape, two samples for rate(), a rule evaluation
    while True:
        recorded = prometheus.query(f'{RECORD}{{namespace="{NAMESPACE}"}}')
        drawn = [prometheus.query(q) for q in queries]
        if (recorded and all(drawn)) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert [r["metric"] for r in recorded] == [
        {"__name__": RECORD, "namespace": NAMESPACE, "model": MODEL, "version": "1"}
    ]
    seconds = float(recorded[0]["value"][1])
    assert 0 <= seconds < 1, seconds  # microseconds to milliseconds in the queue, per request
    assert all(drawn), f"{QUEUE_PANEL}: no data for {queries}"
    assert prometheus.query('up{job="heron-triton"} == 1')  # HeronTritonDown stays quiet
