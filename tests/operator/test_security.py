"""The operator's side of security (docs/deploy.md, "Security"):

- it calls the pipelines' gRPC APIs over TLS (mutual, checking the certificate names the control
  Service whatever address it dials) with the bearer token, as the chart configures it;
- its secrets (that token, a password in the Prometheus URL) never reach a status, an event or a
  log line, whatever goes wrong: a pipeline that refuses the token, a Prometheus that is away;
- the Jobs it starts pass the "restricted" Pod Security Standard and get no API token;
- specs whose paths climb out of their volume or whose image has a scheme are refused, the field
  named; settings it refuses are not repeated back (they may hold the token).

The real kopf operator runs against the API emulator; stand-in pipelines are Heron's gRPC server
kit serving a fake Pipeline API with a TLS certificate that names only their Service.
"""

from __future__ import annotations

import datetime
import json
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from heron.core.grpc import GrpcServerSettings, ServiceBinding, TlsSettings, start_server
from heron.v1 import control_pb2, control_pb2_grpc, stream_pb2
from heron_operator import gpus, jobs, training_jobs
from heron_operator.reconcile import Observed, decide
from heron_operator.run import RedactingFilter, main
from heron_operator.settings import OperatorSettings
from heron_operator.spec import EngineBuildSpec
from heron_operator.training_spec import TrainingRunSpec
from pydantic import ValidationError

from tests.client.client_fakes import FakePipeline
from tests.core.grpc.certs import Certs, make_certs
from tests.operator.conftest import (
    BUILDS,
    EVENTS,
    OperatorThread,
    assert_rbac_grants,
    declare_resources,
    gpu_node,
    wait_for,
)
from tests.support.kube_emulator import EmulatorThread, KubeClient
from tests.support.pod_security import restricted_violations

Json = dict[str, Any]
NAMESPACE = "video"
TOKEN = "s3cret-pipeline-token-4f9a2c"
PROMETHEUS_PASSWORD = "s3cret-prometheus-pw-71be"
ROLLOUTS = "/apis/heron.dev/v1alpha1/namespaces/{ns}/enginerollouts"
SERVICES = "/api/v1/namespaces/{ns}/services"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class StandIn:
    """A stand-in pipeline: its control Service's name and the port its API answers on."""

    pipeline: str
    service: str
    port: int


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """A CA; the server certificate names only the two control Services (no 127.0.0.1)."""
    names = [f"cams-{p}-control.{NAMESPACE}.svc" for p in ("facemask", "other")]
    return make_certs(tmp_path_factory.mktemp("certs"), server_names=names)


def stand_in(certs: Certs, pipeline: str, token: str) -> tuple[StandIn, Any]:
    fake = FakePipeline()
    fake.sources["cam-1"] = control_pb2.SourceStatus(
        source=stream_pb2.SourceSpec(stream_id="cam-1", uri="rtsp://cam/1"),
        state=control_pb2.SOURCE_STATE_PLAYING,
    )
    settings = GrpcServerSettings(
        listen="127.0.0.1:0",
        tls=TlsSettings(
            cert_file=certs.server.cert, key_file=certs.server.key, client_ca_file=certs.ca
        ),
        token=token,
    )
    running = start_server(
        settings,
        [ServiceBinding("heron.v1.Pipeline",
                        lambda s: control_pb2_grpc.add_PipelineServicer_to_server(fake, s))],
    )  # fmt: skip
    return StandIn(pipeline, f"cams-{pipeline}-control", running.port), running


class Collected(logging.Handler):
    """Every log record of the run, formatted with its arguments and traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@dataclass
class Run:
    kube: KubeClient
    logs: Collected
    prometheus_port: int


def _ago(seconds: float) -> str:
    then = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=seconds)
    return then.strftime("%Y-%m-%dT%H:%M:%SZ")


def seed(kube: KubeClient, facemask: StandIn, other: StandIn) -> None:
    """A built EngineBuild, the pipelines' control Services, and three rollouts: one to run
    (TLS and token right), one on a pipeline that wants another token, one already soaking
    whose gates ask an unreachable Prometheus."""
    builds = BUILDS.format(ns=NAMESPACE)
    kube.create(builds, {"metadata": {"name": "det"}, "spec": {
        "model": {"onnx": "/models/det/model.onnx"}, "modelName": "facemask", "precision": "FP32",
        "modelRepository": {"claimName": "models"},
    }})  # fmt: skip
    kube.patch(f"{builds}/det/status", {"status": {
        "observedGeneration": 1, "phase": "Succeeded", "version": 4,
    }})  # fmt: skip
    for s in (facemask, other):
        kube.create(SERVICES.format(ns=NAMESPACE), {
            "metadata": {"name": s.service,
                         "labels": {"heron.dev/pipeline": s.pipeline, "heron.dev/api": "pipeline"}},
            "spec": {"clusterIP": "127.0.0.1", "ports": [{"name": "grpc", "port": s.port}]},
        })  # fmt: skip
    rollouts = ROLLOUTS.format(ns=NAMESPACE)

    def rollout(name: str, pipeline: str, **status: Any) -> None:
        kube.create(rollouts, {"metadata": {"name": name}, "spec": {
            "engineBuild": "det", "selector": {"matchLabels": {"heron.dev/pipeline": pipeline}},
            "canary": {"streams": {"count": 1}}, "soak": "1h",
        }})  # fmt: skip
        if status:
            kube.patch(f"{rollouts}/{name}/status", {"status": status})

    rollout("runs", "facemask")
    rollout("refused", "other")
    rollout("gated", "facemask", phase="Canary", canaryVersion="4", stableVersion="3",
            canaryStartTime=_ago(600), phaseTime=_ago(600), canaryStreams=1, totalStreams=1,
            pipelines=["facemask"], targets=[{
                "pipeline": "facemask", "service": facemask.service,
                "address": f"127.0.0.1:{facemask.port}", "streams": ["cam-1"],
                "canaryStreams": ["cam-1"],
                "stable": {"defaultVersion": "3", "streamVersions": {}, "configVersion": "3"},
            }])  # fmt: skip


@pytest.fixture(scope="module")
def run(certs: Certs) -> Iterator[Run]:
    facemask, facemask_server = stand_in(certs, "facemask", TOKEN)
    other, other_server = stand_in(certs, "other", "another-pipelines-token")
    logs = Collected()
    root = logging.getLogger()
    level = root.level
    root.addHandler(logs)
    root.setLevel(logging.DEBUG)  # kopf's debug lines carry the bodies it patches
    port = closed_port()
    try:
        with EmulatorThread(servers=2, setup=declare_resources) as cluster:
            kube = KubeClient(cluster.urls[0])
            seed(kube, facemask, other)
            settings = OperatorSettings(
                api_server=cluster.urls[1], standalone=True, retry_s=1.0, rollout_poll_s=1.0,
                namespaces=[NAMESPACE],
                pipeline_tls_ca_file=certs.ca, pipeline_tls_cert_file=certs.client.cert,
                pipeline_tls_key_file=certs.client.key, pipeline_token=TOKEN,
                prometheus_url=f"http://heron:{PROMETHEUS_PASSWORD}@127.0.0.1:{port}",
            )  # fmt: skip
            with OperatorThread(settings):
                yield Run(kube, logs, port)
            assert_rbac_grants(cluster, cluster.urls[1], peering=False)
    finally:
        root.removeHandler(logs)
        root.setLevel(level)
        facemask_server.stop()
        other_server.stop()


def rollout(run: Run, name: str) -> Json:
    found: Json = run.kube.get(f"{ROLLOUTS.format(ns=NAMESPACE)}/{name}")
    return found


def status_when(run: Run, name: str, check: Any, what: str) -> Json:
    def done() -> Json | None:
        status: Json = rollout(run, name).get("status") or {}
        return status if check(status) else None

    return wait_for(done, what, timeout=30)


def test_the_operator_calls_the_pipelines_over_mutual_tls_with_the_token(run: Run) -> None:
    """The certificate names only <service>.video.svc and the operator dials 127.0.0.1: the
    canary starts, so TLS checked that name, the client certificate was taken and the token
    was right."""
    status = status_when(run, "runs", lambda s: s.get("phase") in ("Canary", "Failed"),
                         "the canary")  # fmt: skip
    assert status["phase"] == "Canary", status
    assert status["targets"][0]["canaryStreams"] == ["cam-1"]


def test_a_refused_token_is_reported_without_the_token(run: Run) -> None:
    status = status_when(run, "refused", lambda s: s.get("phase") == "Failed", "the refusal")
    assert status["message"].startswith("pipeline other: ")
    assert "bearer token" in status["message"]  # the server's reason: a missing or wrong token
    assert TOKEN not in json.dumps(status)


def test_an_unreachable_prometheus_is_reported_without_its_password(run: Run) -> None:
    status = status_when(run, "gated", lambda s: "gates" in s, "the gates read")
    message = status["gates"]["message"]
    assert f"Prometheus at http://127.0.0.1:{run.prometheus_port}:" in message
    assert "heron:" not in message  # neither user nor password


def test_no_secret_in_any_status_event_or_log(run: Run) -> None:
    status_when(run, "refused", lambda s: s.get("phase") == "Failed", "the refusal")
    status_when(run, "gated", lambda s: "gates" in s, "the gates read")

    def events() -> list[Json] | None:
        found = run.kube.list(EVENTS.format(ns=NAMESPACE))
        reasons = {e["reason"] for e in found}
        return found if {"PipelineRefused", "CanaryStarted"} <= reasons else None

    posted = wait_for(events, "the events", timeout=30)
    rollouts = run.kube.list(ROLLOUTS.format(ns=NAMESPACE))
    everything = json.dumps(posted) + json.dumps(rollouts) + "\n".join(run.logs.lines)
    assert run.logs.lines  # the operator did log (kopf at debug level too)
    for secret in (TOKEN, PROMETHEUS_PASSWORD):
        assert secret not in everything
    messages = [e["message"] for e in posted]
    assert [m for m in messages if "Prometheus at http://127.0.0.1" in m]  # the gates' event


def test_the_settings_never_show_their_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://heron:{PROMETHEUS_PASSWORD}@prometheus:9090"
    settings = OperatorSettings(pipeline_token=TOKEN, prometheus_url=url)
    assert TOKEN not in repr(settings) and PROMETHEUS_PASSWORD not in repr(settings)
    assert sorted(settings.secret_values()) == sorted([TOKEN, PROMETHEUS_PASSWORD])
    with pytest.raises(ValidationError) as refused:  # a client certificate without its key
        OperatorSettings(pipeline_token=TOKEN, pipeline_tls_cert_file=Path("/c.crt"))
    assert "pipeline_tls_cert_file and pipeline_tls_key_file go together" in str(refused.value)
    assert TOKEN not in str(refused.value)


def test_invalid_settings_from_the_environment_are_not_echoed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HERON_OPERATOR_PIPELINE_TOKEN", TOKEN)
    monkeypatch.setenv("HERON_OPERATOR_PIPELINE_TLS_CERT_FILE", "/c.crt")
    assert main() == 2
    said = capsys.readouterr().err
    assert "invalid HERON_OPERATOR_* settings" in said and TOKEN not in said


def test_the_log_filter_masks_what_slips_through() -> None:
    """A second line of defence on main()'s handlers: the token and URL passwords masked."""
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "token %s, prometheus %s", None, None
    )
    record.args = (TOKEN, f"http://heron:{PROMETHEUS_PASSWORD}@prometheus:9090")
    RedactingFilter([TOKEN, PROMETHEUS_PASSWORD]).filter(record)
    assert record.getMessage() == "token ***, prometheus http://heron:***@prometheus:9090"


def test_the_prometheus_password_is_sent_as_basic_auth_and_shown_nowhere() -> None:
    """Prometheus behind basic auth: the URL's user:password goes in the Authorization header;
    what the gates report names the URL without it."""
    import asyncio
    import base64
    import http.server
    import threading

    from heron_operator.gates import Prometheus, PrometheusError

    expected = "Basic " + base64.b64encode(f"heron:{PROMETHEUS_PASSWORD}".encode()).decode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.headers.get("Authorization") == expected
            body = {"status": "success", "data": {"resultType": "vector", "result": []}}
            self.send_response(200 if ok else 401)
            self.end_headers()
            self.wfile.write(json.dumps(body if ok else {"status": "error"}).encode())

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        good = Prometheus(f"http://heron:{PROMETHEUS_PASSWORD}@127.0.0.1:{port}")
        assert good.url == f"http://127.0.0.1:{port}"
        assert asyncio.run(good.total("up")) is None  # authorized: no series
        wrong = Prometheus(f"http://heron:wrong-password@127.0.0.1:{port}/")
        with pytest.raises(PrometheusError) as refused:
            asyncio.run(wrong.total("up"))
        assert "wrong-password" not in str(refused.value)
    finally:
        server.shutdown()


# --- the Jobs it starts ----------------------------------------------------------------------


def build_jobs() -> list[Json]:
    """The Jobs of an FP16 build (a plan per product, TensorRT-RTX, ONNX Runtime) and of an
    INT8 build's gate, as the operator decides them."""
    settings = OperatorSettings()
    products = gpus.products(
        [gpu_node("g1", "NVIDIA-L4", "8.9"), gpu_node("g2", "NVIDIA-A10", "8.6")]
    )
    base: Json = {"modelName": "det", "modelRepository": {"claimName": "models"}}
    specs: list[Json] = [
        {"model": {"onnx": "/models/d/m.onnx"}, "onnxRuntime": {"enabled": True}},
        {
            "model": {"onnx": "/models/d/m.onnx", "calibrationCache": "/models/d/c.bin"},
            "precision": "INT8",
            "accuracyGate": {"calibrationImages": "/models/c", "evalData": "/models/v"},
        },
    ]
    made = []
    for fields in specs:
        spec = EngineBuildSpec.model_validate({**base, **fields})
        build = {"metadata": {"name": "b", "namespace": NAMESPACE, "generation": 1},
                 "status": {"observedGeneration": 1, "phase": "Pending", "version": 5}}  # fmt: skip
        made += decide(build, spec, Observed(products, None, {}, {}), settings).create
    return made


def training_job() -> Json:
    spec = TrainingRunSpec.model_validate({
        "taoSpec": {"inline": "random_seed: 42\n"}, "dataset": {"claimName": "data"},
        "artifacts": {"claimName": "models"}, "prune": {"retrainSpec": {"inline": "x: 1\n"}},
    })  # fmt: skip
    run = {"metadata": {"name": "facemask", "namespace": NAMESPACE, "generation": 1}}
    return training_jobs.manifest(run, spec, OperatorSettings())


def test_the_jobs_it_starts_are_restricted() -> None:
    made = [*build_jobs(), training_job()]
    roles = sorted(j["metadata"]["labels"].get(jobs.ROLE_LABEL, "") for j in made)
    assert roles == ["gate", "gpu", "gpu", "onnx", "rtx", "train"]
    for job in made:
        pod = job["spec"]["template"]
        name = job["metadata"]["name"]
        assert restricted_violations(pod["spec"], pod["metadata"].get("annotations")) == [], name
        assert pod["spec"]["automountServiceAccountToken"] is False, name  # it calls no API
        assert pod["spec"]["enableServiceLinks"] is False, name
        for c in pod["spec"]["containers"]:
            assert c["securityContext"]["readOnlyRootFilesystem"] is True, name
            assert "/tmp" in {m["mountPath"] for m in c["volumeMounts"]}, name  # writable scratch


# --- specs that reach outside their volume ----------------------------------------------------


def training_spec(**changes: Any) -> Json:
    spec: Json = {
        "taoSpec": {"inline": "random_seed: 42\n"},
        "dataset": {"claimName": "data"},
        "artifacts": {"claimName": "models"},
    }
    for dotted, value in changes.items():
        node = spec
        *parents, last = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return spec


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("dataset.mountPath", "/data/../etc", "must not contain a '..' segment"),
        ("dataset.subPath", "../other-team", "must not contain a '..' segment"),
        ("artifacts.subPath", "runs/../../x", "must not contain a '..' segment"),
        ("calibration.images", "../elsewhere", "must not contain a '..' segment"),
        ("image", "http://evil.example/training:1", "expected an image reference"),
        ("image", "docker://heron-training", "expected an image reference"),
    ],
)
def test_a_training_run_that_climbs_out_is_refused_naming_the_field(
    field: str, value: str, problem: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        TrainingRunSpec.model_validate(training_spec(**{field: value}))
    (error,) = refused.value.errors()
    loc = ".".join(str(p) for p in error["loc"])
    assert loc == field and problem in error["msg"], error
