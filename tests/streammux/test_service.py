"""`python -m heron.streammux` as a real process: it batches, serves its probes and
metrics, stops cleanly on SIGTERM and removes its shared memory."""

from __future__ import annotations

import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from heron.core.framestore import SegmentNotFoundError, SharedMemoryRing
from heron.core.plan.settings.streammux import StreammuxSettings, load_mux_config
from heron.core.runtime import EXIT_BAD_SETTINGS, EXIT_OK, load_settings

from tests.core.runtime.service_process import REPO, ServiceProcess
from tests.streammux.test_service_batches import World, write_pipeline

COMMAND = [sys.executable, "-m", "heron.streammux"]


def settings_file(path: Path, world: World, pipeline_config: Path) -> Path:
    data = {
        "pipeline_config": str(pipeline_config),
        "pipeline": world.pipeline,
        "stream_match": f"{world.prefix}-*",
        "discovery_interval_s": 0.05,
        "read_block_ms": 50,
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture
def world(redis_url: str, tmp_path: Path) -> Iterator[World]:
    w = World(redis_url, tmp_path)
    yield w
    w.close()


def test_the_service_batches_reports_and_stops_cleanly(world: World, tmp_path: Path) -> None:
    config = write_pipeline(tmp_path / "p.yaml", batch_size=2, width=32, height=32)
    proc = ServiceProcess(
        [*COMMAND, "--config", str(settings_file(tmp_path / "s.yaml", world, config))],
        {"HERON_REDIS_URL": world.redis_url},
    )
    try:
        proc.wait_running()
        cam = world.producer("cam0", source_id=0)
        cam.publish(4)
        batches = world.read_batches(4)
        assert [len(b.frames) for b in batches] == [2, 2]
        segment = batches[0].frames[0].shm.segment
        assert segment.startswith(f"heron-mux-{world.pipeline}")
        assert proc.probe("/readyz")[0] == 200
        assert proc.probe("/healthz")[0] == 200
        proc.wait_for(
            lambda: "heron_streammux_batches_total{" in proc.get("/metrics")[1], "batch metrics"
        )
        proc.signal(signal.SIGTERM)
        assert proc.wait() == EXIT_OK
    finally:
        proc.kill()
    records = proc.records()  # every stderr line is a JSON log record: no tracker warnings
    assert {r["service"] for r in records} == {"streammux"}
    assert any(r["message"] == "stopped" for r in records)
    with pytest.raises(SegmentNotFoundError):  # the muxer unlinked its ring on the way out
        SharedMemoryRing.attach(segment)


def test_a_missing_pipeline_config_is_a_settings_error(world: World, tmp_path: Path) -> None:
    proc = ServiceProcess(
        [*COMMAND, "--config", str(settings_file(tmp_path / "s.yaml", world, tmp_path / "no.txt"))],
        {"HERON_REDIS_URL": world.redis_url},
    )
    try:
        assert proc.wait() == EXIT_BAD_SETTINGS
    finally:
        proc.kill()
    (record,) = [r for r in proc.records() if r["level"] == "ERROR"]
    assert "pipeline_config" in record["message"]
    assert "no.txt" in record["message"]


def test_a_broken_pipeline_config_is_a_settings_error_naming_its_line(
    world: World, tmp_path: Path
) -> None:
    config = write_pipeline(tmp_path / "p.yaml", batch_size=0)
    proc = ServiceProcess(
        [*COMMAND, "--config", str(settings_file(tmp_path / "s.yaml", world, config))],
        {"HERON_REDIS_URL": world.redis_url},
    )
    try:
        assert proc.wait() == EXIT_BAD_SETTINGS
    finally:
        proc.kill()
    (record,) = [r for r in proc.records() if r["level"] == "ERROR"]
    assert f"{config}:" in record["message"]
    assert "streammux.batch_size" in record["message"]


def test_the_documented_settings_and_streammux_group_load(tmp_path: Path) -> None:
    doc = (REPO / "docs" / "streammux.md").read_text(encoding="utf-8")
    settings_yaml = re.findall(r"```yaml\n(.*?)```", doc, re.DOTALL)[0]
    group = re.findall(r"```\n(\[streammux\].*?)```", doc, re.DOTALL)[0]
    app = tmp_path / "deepstream_app.txt"
    app.write_text(
        "[source0]\nenable=1\ntype=3\nuri=file:///none.mp4\nnum-sources=4\n\n"
        f"[sink0]\nenable=1\ntype=1\n\n{group}",
        encoding="utf-8",
    )
    (tmp_path / "streammux.yaml").write_text(settings_yaml, encoding="utf-8")
    settings = load_settings(
        StreammuxSettings, ["--config", str(tmp_path / "streammux.yaml")], pipeline_config=app
    )
    assert (settings.pipeline, settings.stream_match, settings.ring_batches) == (
        "lobby", "lobby-*", 16,
    )  # fmt: skip
    mux = load_mux_config(settings.pipeline_config)
    assert mux.batch_size == 4
    assert mux.streammux.batched_push_timeout == 40000
    assert (mux.streammux.width, mux.streammux.height, mux.streammux.enable_padding) == (
        960, 544, True,
    )  # fmt: skip
    assert mux.ring_slots(settings.ring_batches) == 64
