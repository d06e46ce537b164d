"""docs/runtime.md's example service and settings file run as written."""

from __future__ import annotations

import re
import signal
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.core.runtime.service_process import REPO, ServiceProcess

DOC = REPO / "docs" / "runtime.md"


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)


def test_documented_service_runs_probes_and_stops_cleanly(tmp_path: Path, redis_url: str) -> None:
    service = tmp_path / "counter.py"
    service.write_text(code_blocks("python")[0], encoding="utf-8")
    settings = tmp_path / "settings.yaml"
    settings.write_text(code_blocks("yaml")[0], encoding="utf-8")
    proc = ServiceProcess(
        [sys.executable, str(service), "--config", str(settings)],
        {"HERON_REDIS_URL": redis_url, "HERON_WORK_S": "0.02"},
    )
    try:
        proc.wait_running()
        assert proc.probe("/readyz")[0] == 200
        assert proc.probe("/healthz")[0] == 200

        def counted() -> float:
            text = proc.get("/metrics")[1]
            for family in text_string_to_metric_families(text):
                for s in family.samples:
                    # No pipeline: a ServiceSettings service belongs to none.
                    labels = {"pipeline": "", "stage": "count"}
                    if s.name == "heron_stage_frames_total" and s.labels == labels:
                        return s.value
            return 0.0

        proc.wait_for(lambda: counted() >= 3, "frames to be counted")
        proc.signal(signal.SIGTERM)
        assert proc.wait() == 0
    finally:
        proc.kill()
    records = proc.records()
    assert {r["service"] for r in records} == {"counter-east"}  # service_name from the file
    assert any(r["message"].startswith("acknowledged ") for r in records)
    assert any(r["message"].endswith(" frames of cam-7") for r in records)  # stream: from the file
    assert any(r["level"] == "DEBUG" for r in records)  # log.level from the file
