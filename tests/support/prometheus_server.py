"""A real Prometheus for tests (Debian's `prometheus`, see ../shared/NOTES.md): static targets
scraped every second, each with the labels a Kubernetes scrape would give it (`namespace`,
`heron_dev_pipeline`), targets of one job in one scrape config, rule files evaluated as often as
it scrapes, on a free loopback port; stopped and its data gone at exit. `features` are its
`--enable-feature` flags (`exemplar-storage` keeps the exemplars it scrapes)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heron.run.redis_local import free_port
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.parser import text_string_to_metric_families


class PrometheusUnavailableError(RuntimeError):
    pass


def openmetrics_families(text: str) -> list[Metric]:
    """`text` through prometheus_client's OpenMetrics parser, which refuses what the format
    does not allow (a missing `# EOF`, a bad exemplar, a counter without `_total`)."""
    families: list[Metric] = list(text_string_to_metric_families(text))  # type: ignore[no-untyped-call]
    return families


@dataclass(frozen=True)
class Target:
    job: str
    address: str  # host:port serving /metrics
    labels: Mapping[str, str]


class PrometheusServer:
    def __init__(
        self,
        workdir: Path,
        targets: Sequence[Target],
        interval_s: float = 1.0,
        rule_files: Sequence[Path] = (),
        features: Sequence[str] = (),
    ) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise PrometheusUnavailableError(
                "prometheus is not installed (apt-get install --no-install-recommends prometheus)"
            )
        self.binary, self.workdir, self.port = binary, workdir, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = workdir / "prometheus.yml"
        self.features = list(features)
        jobs: dict[str, list[dict[str, Any]]] = {}
        for t in targets:  # a job name may appear once in a config
            jobs.setdefault(t.job, []).append({"targets": [t.address], "labels": dict(t.labels)})
        every = f"{interval_s:g}s"
        config = {
            "global": {"scrape_interval": every, "evaluation_interval": every},
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": [
                {"job_name": job, "scrape_interval": every, "static_configs": static}
                for job, static in jobs.items()
            ],
        }
        # YAML is a superset of JSON: no YAML writer needed.
        self.config.write_text(json.dumps(config, indent=2))
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PrometheusServer:
        log = (self.workdir / "prometheus.log").open("wb")
        self._process = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                *(f"--enable-feature={f}" for f in self.features),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                tail = (self.workdir / "prometheus.log").read_text()[-2000:]
                raise PrometheusUnavailableError(f"prometheus exited: {tail}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise PrometheusUnavailableError(f"prometheus at {self.url} not ready in 30 s")

    def __exit__(self, *_: object) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)

    def query(self, expression: str) -> list[dict[str, Any]]:
        """An instant query's result vector."""
        return self._api("query", {"query": expression})

    def query_range(
        self, expression: str, start: float, end: float, step_s: float
    ) -> list[dict[str, Any]]:
        """A range query's matrix: each series with its `values` [[time, "value"], ...]."""
        args = {"query": expression, "start": f"{start:.3f}", "end": f"{end:.3f}"}
        return self._api("query_range", {**args, "step": f"{step_s:g}"})

    def query_exemplars(self, expression: str, start: float, end: float) -> list[dict[str, Any]]:
        """Exemplars of the series `expression` selects: each series' `seriesLabels` and its
        `exemplars` [{"labels", "value", "timestamp"}, ...] (needs `exemplar-storage`)."""
        args = {"query": expression, "start": f"{start:.3f}", "end": f"{end:.3f}"}
        return self._api("query_exemplars", args, key=None)

    def targets(self) -> list[dict[str, Any]]:
        """The active targets: each with `health` ("up"), `lastError` and `labels`."""
        found: list[dict[str, Any]] = self._api("targets", {}, key="activeTargets")
        return found

    def _api(
        self, path: str, args: dict[str, str], key: str | None = "result"
    ) -> list[dict[str, Any]]:
        url = f"{self.url}/api/v1/{path}?" + urllib.parse.urlencode(args)
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
        result: list[dict[str, Any]] = body["data"] if key is None else body["data"][key]
        return result
