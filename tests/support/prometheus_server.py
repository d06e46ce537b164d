"""A real Prometheus for tests (Debian's `prometheus`, see ../shared/NOTES.md): static targets
scraped every second, each with the labels a Kubernetes scrape would give it (`namespace`,
`heron_dev_pipeline`), on a free loopback port; stopped and its data gone at exit."""

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


class PrometheusUnavailableError(RuntimeError):
    pass


@dataclass(frozen=True)
class Target:
    job: str
    address: str  # host:port serving /metrics
    labels: Mapping[str, str]


class PrometheusServer:
    def __init__(self, workdir: Path, targets: Sequence[Target], interval_s: float = 1.0) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise PrometheusUnavailableError(
                "prometheus is not installed (apt-get install --no-install-recommends prometheus)"
            )
        self.binary, self.workdir, self.port = binary, workdir, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = workdir / "prometheus.yml"
        scrape = [
            {
                "job_name": t.job,
                "scrape_interval": f"{interval_s:g}s",
                "static_configs": [{"targets": [t.address], "labels": dict(t.labels)}],
            }
            for t in targets
        ]
        # YAML is a superset of JSON: no YAML writer needed.
        self.config.write_text(json.dumps({"scrape_configs": scrape}, indent=2))
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PrometheusServer:
        log = (self.workdir / "prometheus.log").open("wb")
        self._process = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
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
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result
