"""The proof of docs/observability.md: `heron run` on the face-mask clip (../shared's, else a
generated one), looped, through every service (ingest, streammux, inference, tracker, overlay
into an MP4, control), scraped by a real Prometheus (Debian's) that evaluates
charts/heron/rules/heron.rules.yaml, with the labels the chart's PodMonitor gives.

- `promtool check metrics` passes on each service's /metrics as it serves it in the text
  format; the OpenMetrics it serves Prometheus (which asks for it) parses, and every scrape of
  it succeeds;
- every query of every panel of charts/heron/dashboards returns data, unless the panel says it
  needs metrics only a GPU node or the Kubernetes operator exports ("Needs ...");
- with `--enable-feature=exemplar-storage`, Prometheus holds exemplars of every stage's latency,
  of capture-to-sink and of bus delivery; each names a real frame (or bus entry) of the run, and
  the slowest frame to the sinks is fetched through the Detections API with
  docs/observability.md's own snippet.

With HERON_DASHBOARD_PNG=<folder> the dashboards are also drawn there as PNGs from Prometheus's
data (bench/dashboard_png.py): how docs/observability/*.png were made.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.e2e.conftest import Clip, write_app
from tests.e2e.harness import Output, heron_run
from tests.e2e.test_sources_at_run_time import GRPC_LINE
from tests.support.dashboards import Panel, panels, resolve
from tests.support.prometheus_server import (
    PrometheusServer,
    PrometheusUnavailableError,
    Target,
    openmetrics_families,
)

pytestmark = pytest.mark.slow

RULES = REPO / "charts" / "heron" / "rules" / "heron.rules.yaml"
SERVICES = ("ingest", "streammux", "inference", "tracker", "overlay", "control")
PLACE = {"namespace": "e2e", "heron_dev_pipeline": "cams"}
FLOWING = re.compile(r"^\*\*PERF:  [1-9]")
STREAM = "source-0"  # write_app's one source
STAGES = {
    "ingest.decode", "ingest.publish", "streammux", "inference.preprocess", "inference.infer",
    "inference.postprocess", "inference.publish", "tracker", "tracker.publish", "overlay.read",
    "overlay.draw",
}  # fmt: skip
DOC = REPO / "docs" / "observability.md"


@dataclass(frozen=True)
class Run:
    metrics: dict[str, str]  # service -> host:port of its /metrics
    prometheus: PrometheusServer
    started: float
    control: str  # host:port of the control service's gRPC API


def metrics_ports(run_dir: Path, deadline: float) -> dict[str, str]:
    """Each service's metrics address, from the settings file `heron run` writes for it."""
    while True:
        found = {}
        for name in SERVICES:
            path = run_dir / f"{name}.json"
            if path.is_file():
                port = json.loads(path.read_text())["metrics"]["port"]
                found[name] = f"127.0.0.1:{port}"
        if len(found) == len(SERVICES) or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, model_dir: Path, clip: Clip) -> Iterator[Run]:
    if shutil.which("prometheus") is None:
        pytest.skip(
            "prometheus is not installed: apt-get install --no-install-recommends prometheus"
        )
    folder = tmp_path_factory.mktemp("observability")
    config = write_app(
        folder, model_dir, clip.path.as_uri(), loop=True, output=folder / "out.mp4", tracker=True
    )
    started = time.time()
    proc = heron_run(config, folder / "run", "--pipeline", PLACE["heron_dev_pipeline"])
    out = Output(proc)
    try:
        # Prometheus starts beside the services: its first scrapes find them coming up.
        metrics = metrics_ports(folder / "run", time.monotonic() + 30)
        assert sorted(metrics) == sorted(SERVICES), "\n".join(out.lines)
        targets = [Target("heron-pipelines", address, PLACE) for address in metrics.values()]
        (folder / "prometheus").mkdir()
        try:
            prometheus = PrometheusServer(
                folder / "prometheus", targets, rule_files=[RULES], features=["exemplar-storage"]
            )
        except PrometheusUnavailableError as e:
            pytest.skip(str(e))
        with prometheus:
            out.wait_for(FLOWING, timeout=90)
            control = out.wait_for(GRPC_LINE).group(1)
            yield Run(metrics, prometheus, started, control)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_promtool_check_metrics_passes_on_every_services_metrics(run: Run) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed: apt-get install --no-install-recommends prometheus")
    for service, address in run.metrics.items():
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as r:
            body = r.read()
        assert b"heron_service_up" in body, service
        done = subprocess.run(
            [promtool, "check", "metrics"], input=body, capture_output=True, check=False
        )
        problems = (done.stdout + done.stderr).decode()
        assert done.returncode == 0 and not problems.strip(), f"{service}: {problems}"


def test_openmetrics_parses_and_prometheus_scrapes_every_service(run: Run) -> None:
    """What Prometheus reads (it asks for OpenMetrics): strict-parser clean, with exemplars on
    the stage latency, and every target's last scrape healthy."""
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    for service, address in run.metrics.items():
        request = urllib.request.Request(f"http://{address}/metrics", headers={"Accept": accept})
        with urllib.request.urlopen(request, timeout=10) as r:
            assert r.headers["Content-Type"].startswith("application/openmetrics-text"), service
            families = openmetrics_families(r.read().decode())
        if service != "control":  # the control service times no frames
            named = [
                s.exemplar.labels
                for f in families
                if f.name == "heron_stage_latency_seconds"
                for s in f.samples
                if s.exemplar is not None
            ]
            assert named and all(e.keys() == {"stream", "frame"} for e in named), service
    # Its first scrapes come some seconds after it starts, and may find a service starting.
    deadline = time.monotonic() + 30
    while True:
        targets = run.prometheus.targets()
        up = [t for t in targets if t["health"] == "up"]
        if len(up) == len(SERVICES) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert [(t["health"], t["lastError"]) for t in targets] == [("up", "")] * len(SERVICES)


def answers(run: Run, panel: Panel) -> bool:
    """Whether any query of the panel returns a series for this pipeline."""
    place = PLACE["namespace"], PLACE["heron_dev_pipeline"]
    return any(run.prometheus.query(resolve(expr, *place)) for expr in panel.exprs)


def test_every_dashboard_panel_returns_data_or_says_what_it_needs(run: Run) -> None:
    everything = panels()
    assert len(everything) >= 25
    needing = [p for p in everything if p.needs]
    waiting = [p for p in everything if not p.needs]
    # Rates need two scrapes, the quantiles a rule evaluation after them: wait, a bounded time.
    deadline = time.monotonic() + 45
    while waiting and time.monotonic() < deadline:
        waiting = [p for p in waiting if not answers(run, p)]
        if waiting:
            time.sleep(1)
    assert not waiting, "no data: " + "; ".join(f"{p.dashboard}: {p.title}" for p in waiting)
    # What the others need is named, and only GPU or Kubernetes-only sources are.
    assert {p.needs for p in needing} == {
        "Needs a GPU node: DCGM exporter or Triton metrics",
        "Needs Triton (the chart's triton.enabled, scraped by its ServiceMonitor)",
        "Needs the operator's metrics (Kubernetes; docs/observability.md)",
    }
    draw_pngs(run)


@dataclass(frozen=True)
class Exemplar:
    series: dict[str, str]  # the labels of the bucket's series
    labels: dict[str, str]  # the exemplar's own
    value: float


def exemplars(run: Run, selector: str) -> list[Exemplar]:
    """What Prometheus holds for the run's series `selector` (a metric name) selects."""
    place = ", ".join(f'{k}="{v}"' for k, v in PLACE.items())
    found = run.prometheus.query_exemplars(f"{selector}{{{place}}}", run.started, time.time())
    return [
        Exemplar(s["seriesLabels"], e["labels"], float(e["value"]))
        for s in found
        for e in s["exemplars"]
    ]


def published_frames(address: str, stream: str) -> int:
    """heron_ingest_frames_published_total of `stream`, read from ingest's /metrics now."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as r:
        body = r.read().decode()
    sample = f'heron_ingest_frames_published_total{{stream="{stream}"}} '
    (line,) = [line for line in body.splitlines() if line.startswith(sample)]
    return int(float(line.removeprefix(sample)))


def doc_snippet(name: str) -> Any:
    """The function `name` of docs/observability.md's Python code, run as the page shows it."""
    (code,) = [c for c in re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
               if f"def {name}(" in c]  # fmt: skip
    scope: dict[str, Any] = {}
    exec(compile(code, str(DOC), "exec"), scope)
    return scope[name]


def test_exemplars_name_real_frames_and_the_api_returns_the_slowest(run: Run) -> None:
    """docs/observability.md, "From a slow p95 to the frame", on the live run: exemplars of
    every stage, of capture-to-sink and of bus delivery; the slowest frame's metadata."""
    deadline = time.monotonic() + 30
    while True:
        stages = exemplars(run, "heron_stage_latency_seconds_bucket")
        sinks = exemplars(run, "heron_overlay_capture_to_sink_seconds_bucket")
        entries = exemplars(run, "heron_bus_delivery_latency_seconds_bucket")
        seen = {e.series["stage"] for e in stages}
        if (seen >= STAGES and sinks and entries) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert seen >= STAGES, f"stages without exemplars: {sorted(STAGES - seen)}"
    assert sinks and entries
    # Read from ingest itself, after the exemplars: every frame they name is numbered below it
    # (decode's: at it). Prometheus's value would be its last scrape of ingest, which can be
    # older than its last scrape of a later stage.
    last = published_frames(run.metrics["ingest"], STREAM)
    for e in stages + sinks:
        assert e.labels.keys() == {"stream", "frame"}, e
        assert e.labels["stream"] == STREAM and 0 <= int(e.labels["frame"]) <= last, e
        assert e.value <= float(e.series["le"]), e  # on the bucket its time fell in
    assert all(re.fullmatch(r"\d+-\d+", e.labels["entry"]) for e in entries), entries
    # What Grafana asks for the dots of each latency p95 panel: its query, to query_exemplars.
    for panel in panels():
        for expr in panel.exemplar_exprs:
            query = resolve(expr, PLACE["namespace"], PLACE["heron_dev_pipeline"])
            got = run.prometheus.query_exemplars(query, run.started, time.time())
            assert any(s["exemplars"] for s in got), f"{panel.dashboard}: {panel.title}"
    slowest = max(sinks, key=lambda e: e.value)
    frame_metadata = doc_snippet("frame_metadata")
    meta = frame_metadata(run.control, slowest.labels["stream"], int(slowest.labels["frame"]))
    assert meta is not None, f"no metadata for {slowest}"
    assert (meta.frame.stream_id, str(meta.frame.frame_number)) == (
        slowest.labels["stream"],
        slowest.labels["frame"],
    )
    assert {s.stage for s in meta.stages} == {"inference", "tracker"}
    assert meta.frame.HasField("capture_time")


def draw_pngs(run: Run) -> None:
    """HERON_DASHBOARD_PNG=<folder>: the dashboards as PNGs, from the run so far."""
    folder = os.environ.get("HERON_DASHBOARD_PNG")
    if not folder:
        return
    time.sleep(float(os.environ.get("HERON_DASHBOARD_PNG_SECONDS", "0")))
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "dashboard_png.py"),
            "--prometheus",
            run.prometheus.url,
            "--start",
            f"{run.started:.0f}",
            "--namespace",
            PLACE["namespace"],
            "--pipeline",
            PLACE["heron_dev_pipeline"],
            "--rate",
            "10s",
            "--out",
            str(Path(folder).resolve()),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
