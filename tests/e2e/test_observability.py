"""The proof of docs/observability.md: `heron run` on the face-mask clip (../shared's, else a
generated one), looped, through every service (ingest, streammux, inference, tracker, overlay
into an MP4, control), scraped by a real Prometheus (Debian's) that evaluates
charts/heron/rules/heron.rules.yaml, with the labels the chart's PodMonitor gives.

- `promtool check metrics` passes on each service's /metrics as it serves it;
- every query of every panel of charts/heron/dashboards returns data, unless the panel says it
  needs metrics only a GPU node or the Kubernetes operator exports ("Needs ...").

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

import pytest

from tests.conftest import REPO
from tests.e2e.conftest import Clip, write_app
from tests.e2e.harness import Output, heron_run
from tests.support.dashboards import Panel, panels, resolve
from tests.support.prometheus_server import PrometheusServer, PrometheusUnavailableError, Target

pytestmark = pytest.mark.slow

RULES = REPO / "charts" / "heron" / "rules" / "heron.rules.yaml"
SERVICES = ("ingest", "streammux", "inference", "tracker", "overlay", "control")
PLACE = {"namespace": "e2e", "heron_dev_pipeline": "cams"}
FLOWING = re.compile(r"^\*\*PERF:  [1-9]")


@dataclass(frozen=True)
class Run:
    metrics: dict[str, str]  # service -> host:port of its /metrics
    prometheus: PrometheusServer
    started: float


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
            prometheus = PrometheusServer(folder / "prometheus", targets, rule_files=[RULES])
        except PrometheusUnavailableError as e:
            pytest.skip(str(e))
        with prometheus:
            out.wait_for(FLOWING, timeout=90)
            yield Run(metrics, prometheus, started)
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
