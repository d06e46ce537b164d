"""`heron run`'s settings files: each service loads from its file exactly `ServicePlan.settings`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from heron.core.plan.model import PipelinePlan
from heron.core.runtime import load_settings
from heron.run.options import RunOptions
from heron.run.plan import plan_run

from tests.core.plan.pipelines import FILE_SOURCE, LIVE_SOURCE, OSD, TRACKER, write_pipeline

URL = "redis://:hunter2@127.0.0.1:6399/0"


@pytest.fixture(autouse=True)
def _no_heron_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The services read HERON_* too; the comparison is of the files alone."""
    for name in [n for n in os.environ if n.startswith("HERON_")]:
        monkeypatch.delenv(name)


@pytest.mark.parametrize(
    ("source", "options"),
    [
        (FILE_SOURCE, RunOptions()),
        (LIVE_SOURCE, RunOptions(pipeline="lobby", log_level="debug")),
        (FILE_SOURCE, RunOptions(backend="triton", triton_model="m", shm_slots=20, max_lag=3)),
    ],
    ids=["lossless", "live", "triton"],
)
def test_each_service_loads_its_planned_settings(
    tmp_path: Path, source: str, options: RunOptions
) -> None:
    config = write_pipeline(tmp_path, source, extra=TRACKER + OSD)

    plan = plan_run(config, tmp_path / "run", options, URL)

    for service in plan.services:
        loaded = load_settings(type(service.settings), ["--config", str(service.settings_file)])
        assert loaded == service.settings, service.module
        assert loaded.metrics.port == service.metrics_port
        assert loaded.log.format == "json" and loaded.service_name == service.child.name
        assert service.module == service.child.argv[2]
        assert "hunter2" not in service.settings_file.read_text()


def test_the_files_hold_the_plan_plus_what_a_local_run_adds(tmp_path: Path) -> None:
    config = write_pipeline(tmp_path, extra=TRACKER + OSD)

    run = plan_run(config, tmp_path / "run", RunOptions(), URL)

    assert isinstance(run.plan, PipelinePlan)
    assert [s.module for s in run.services] == [p.module for p in run.plan.services]
    for service, planned in zip(run.services, run.plan.services, strict=True):
        written = json.loads(service.settings_file.read_text())
        shared = planned.model_dump(mode="json")["settings"]
        assert {
            k: v for k, v in written.items() if k not in ("service_name", "metrics", "log")
        } == {k: v for k, v in shared.items() if k != "log"}
        assert written["log"] == {**shared["log"], "format": "json"}
