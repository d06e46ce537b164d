"""/metrics, /healthz and /readyz over real HTTP, served in-process on a free port."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from heron.core.runtime import FlagCheck, Heartbeat, Readiness, ServiceMetrics
from heron.core.runtime.endpoint import HealthServer
from heron.v1.frame_pb2 import FrameRef
from prometheus_client.parser import text_string_to_metric_families

from tests.support.prometheus_server import openmetrics_families


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.headers["Content-Type"], r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read().decode()


class Endpoint:
    def __init__(self) -> None:
        self.metrics = ServiceMetrics("tracker", pipeline="cams")
        self.heartbeat = Heartbeat(timeout_s=60, startup_timeout_s=60)
        self.readiness = Readiness()
        self.server = HealthServer(
            "127.0.0.1", 0, self.metrics.registry, self.heartbeat.check, self.readiness
        ).start()
        self.base = f"http://127.0.0.1:{self.server.port}"

    def json(self, path: str) -> tuple[int, dict[str, Any]]:
        status, content_type, body = get(self.base + path)
        assert content_type == "application/json"
        return status, json.loads(body)


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    e = Endpoint()
    yield e
    e.server.stop()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_are_scraped_in_prometheus_text_format(endpoint: Endpoint) -> None:
    endpoint.metrics.set_up(True)
    endpoint.metrics.observe("tracker", 0.004, frames=4)
    with endpoint.metrics.track("tracker.publish"):
        pass
    status, content_type, body = get(endpoint.base + "/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    got = samples(body)
    assert got[("heron_service_up", (("service", "tracker"),))] == 1.0
    track = (("pipeline", "cams"), ("stage", "tracker"))
    assert got[("heron_stage_frames_total", track)] == 4.0
    assert got[("heron_stage_latency_seconds_count", track)] == 1.0
    assert got[("heron_stage_latency_seconds_bucket", (("le", "0.005"), *track))] == 1.0
    assert (
        got[("heron_stage_latency_seconds_bucket", (("le", "0.0025"), track[0], track[1]))] == 0.0
    )
    publish = (("pipeline", "cams"), ("stage", "tracker.publish"))
    assert got[("heron_stage_frames_total", publish)] == 1.0
    names = {name for name, _ in got}
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes"} <= names
    assert "python_info" in names


def test_failed_work_is_not_counted(endpoint: Endpoint) -> None:
    with pytest.raises(ValueError), endpoint.metrics.track("inference"):
        raise ValueError("decode failed")
    got = samples(get(endpoint.base + "/metrics")[2])
    assert ("heron_stage_frames_total", (("pipeline", "cams"), ("stage", "inference"))) not in got


# What scrapers send: Prometheus 2.x's header (Debian's 2.42), one negotiating UTF-8 escaping
# as Prometheus 3 does, a bare ask.
OPENMETRICS_ACCEPTS = [
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
    "application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;"
    "escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1",
    "application/openmetrics-text",
]
TEXT_ACCEPTS = ["", "text/plain;version=0.0.4", "text/plain", "*/*"]


def scrape(endpoint: Endpoint, accept: str) -> tuple[str, str]:
    """(Content-Type, body) of /metrics with a slow frame observed, as `accept` gets them."""
    endpoint.metrics.observe("inference.infer", 1.7, frames=4, frame=FrameRef(
        stream_id="cam-3", frame_number=812))  # fmt: skip
    headers = {"Accept": accept} if accept else {}
    request = urllib.request.Request(endpoint.base + "/metrics", headers=headers)
    with urllib.request.urlopen(request, timeout=5) as r:
        return r.headers["Content-Type"], r.read().decode()


@pytest.mark.parametrize("accept", OPENMETRICS_ACCEPTS)
def test_openmetrics_with_exemplars_is_served_when_asked_for(
    endpoint: Endpoint, accept: str
) -> None:
    content_type, body = scrape(endpoint, accept)
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    assert body.rstrip().endswith("# EOF")
    found = [
        (s.labels["le"], s.exemplar)
        for family in openmetrics_families(body)  # the strict OpenMetrics parser
        if family.name == "heron_stage_latency_seconds"
        for s in family.samples
        if s.exemplar is not None
    ]
    assert [(le, e.labels, e.value) for le, e in found] == [
        ("2.5", {"stream": "cam-3", "frame": "812"}, 1.7)
    ]


@pytest.mark.parametrize("accept", TEXT_ACCEPTS)
def test_the_text_format_otherwise_without_exemplars_and_promtool_clean(
    endpoint: Endpoint, accept: str
) -> None:
    content_type, body = scrape(endpoint, accept)
    assert content_type.startswith("text/plain; version=")
    assert "# {" not in body and "# EOF" not in body
    got = samples(body)
    track = (("pipeline", "cams"), ("stage", "inference.infer"))
    assert got[("heron_stage_latency_seconds_bucket", (("le", "2.5"), *track))] == 1.0
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed: apt-get install --no-install-recommends prometheus")
    done = subprocess.run(
        [promtool, "check", "metrics"], input=body.encode(), capture_output=True, check=False
    )
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), done


def test_healthz_turns_503_when_the_loop_stops_ticking(endpoint: Endpoint) -> None:
    endpoint.heartbeat.beat()
    assert endpoint.json("/healthz")[0] == 200
    endpoint.heartbeat.timeout_s = 0.0  # every tick is now too old: the loop counts as stuck
    status, body = endpoint.json("/healthz")
    assert status == 503
    assert body["status"] == "stuck" and "last tick" in body["detail"]


def test_readyz_names_the_failing_check(endpoint: Endpoint) -> None:
    model = endpoint.readiness.add(FlagCheck("model loaded"))
    endpoint.readiness.add(FlagCheck("engine built", ok=True))
    status, body = endpoint.json("/readyz")
    assert status == 503
    assert body["status"] == "not ready"
    assert body["failed"] == [{"name": "model loaded", "ok": False, "detail": "not set yet"}]
    assert [c["name"] for c in body["checks"]] == ["model loaded", "engine built"]
    model.set("v3")
    status, body = endpoint.json("/readyz")
    assert (status, body["status"], body["failed"]) == (200, "ready", [])


def test_readyz_with_no_checks_is_ready(endpoint: Endpoint) -> None:
    assert endpoint.json("/readyz")[0] == 200


def test_unknown_path_is_404_listing_the_known_ones(endpoint: Endpoint) -> None:
    status, body = endpoint.json("/nope")
    assert status == 404 and body["paths"] == ["/metrics", "/healthz", "/readyz"]


def test_port_in_use_is_an_os_error(endpoint: Endpoint) -> None:
    with pytest.raises(OSError):
        HealthServer(
            "127.0.0.1",
            endpoint.server.port,
            endpoint.metrics.registry,
            endpoint.heartbeat.check,
            endpoint.readiness,
        )
