"""`heron run --in-process`: the same services as threads of one process, on in-memory queues.

The same config as the process runs of test_run.py: every frame must reach the sinks once, no
Redis may start, the stages' log lines land in one file, and a stage that fails ends the run.
"""

from __future__ import annotations

import re
import signal
import threading
from pathlib import Path

import psutil
import pytest
from heron.run.options import RunOptions
from heron.run.plan import has_main
from heron.run.runner import RunRequest, run_pipeline
from heron.run.shm import leftover_segments
from heron.run.threads import STAGE_LOG, stage_log_lines

from tests.e2e.conftest import Clip, write_app
from tests.e2e.harness import Output, heron_run
from tests.e2e.test_faults import numbered_clip, numbers_in  # noqa: F401 (a fixture)

PERF = re.compile(r"^\*\*PERF:  (\d+\.\d\d) \((\d+\.\d\d)\)\t$")
needs_overlay = pytest.mark.skipif(
    not has_main("heron.overlay"), reason="heron.overlay is not installed"
)


def _resource_tracker(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE or "resource_tracker" in " ".join(
            proc.cmdline()
        )
    except psutil.NoSuchProcess:
        return True


@needs_overlay
def test_every_frame_reaches_the_recording_once_and_in_order_without_redis(
    tmp_path: Path,
    model_dir: Path,
    numbered_clip: Clip,  # noqa: F811
) -> None:
    output = tmp_path / "out.mp4"
    config = write_app(
        tmp_path, model_dir, numbered_clip.path.as_uri(), output=output, tracker=True, osd=False
    )
    proc = heron_run(config, tmp_path / "run", "--in-process")
    out = Output(proc)
    try:
        out.wait_for(re.compile(r"^\*\*PERF:  [1-9]"), timeout=90)
        family = psutil.Process(proc.pid).children(recursive=True)
        assert proc.wait(timeout=180) == 0, "\n".join(out.rest())
    finally:
        proc.kill()
    lines = out.rest()
    # Python's shared-memory resource tracker is the one child a run may have (it unlinks the
    # ring after a crash); no service and no redis-server.
    others = [p for p in family if not _resource_tracker(p)]
    assert others == [], f"--in-process started processes: {others}"
    assert not any("redis-server" in line for line in lines), lines
    assert f"frames out of the last stage: source-0: {numbered_clip.frames}; restarts: none" in (
        lines
    )
    assert "frames lost: none" in lines
    # The end says what the detector found and where each output went.
    assert any(line.startswith("objects found: ") for line in lines), lines
    assert f"output [sink0]: {output}" in lines
    assert f"settings and logs of every service: {tmp_path / 'run'}" in lines
    assert numbers_in(output) == list(range(numbered_clip.frames))
    log = tmp_path / "run" / STAGE_LOG
    for stage in ("ingest", "inference", "tracker", "overlay"):
        assert stage_log_lines(log, stage), f"no log line of {stage} in {log}"
    assert leftover_segments([proc.pid]) == []


def test_a_live_pipeline_runs_through_the_muxer_and_stops_on_sigterm(
    tmp_path: Path, model_dir: Path, short_clip: Clip
) -> None:
    config = write_app(tmp_path, model_dir, short_clip.path.as_uri(), loop=True)
    proc = heron_run(config, tmp_path / "run", "--in-process")
    out = Output(proc)
    try:
        out.wait_for(re.compile(r"^\*\*PERF:  [1-9]"), timeout=90)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    finally:
        proc.kill()
    lines = out.rest()
    assert code == 128 + signal.SIGTERM, lines
    assert any("services: ingest, streammux, inference" in line for line in lines), lines
    assert any("stopped by SIGTERM" in line for line in lines)
    assert stage_log_lines(tmp_path / "run" / STAGE_LOG, "streammux")
    assert leftover_segments([proc.pid]) == []


def test_a_stage_that_fails_ends_the_run_with_its_last_lines(
    tmp_path: Path, model_dir: Path, clip: Clip, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No restarts in one process: the failure is reported at once, with the stage's lines."""
    from heron.inference.service import InferenceService

    calls = threading.Event()

    def broken_step(self: InferenceService) -> None:
        calls.set()
        raise RuntimeError("the detector fell over")

    monkeypatch.setattr(InferenceService, "step", broken_step)
    config = write_app(tmp_path, model_dir, clip.path.as_uri())
    lines: list[str] = []
    result = run_pipeline(
        RunRequest(
            config, tmp_path / "run", RunOptions(in_process=True, grpc_listen="127.0.0.1:0")
        ),
        out=lines.append,
    )
    assert calls.is_set()
    assert result.exit_code == 1
    assert "gave up on inference: exit code 1" in result.reason, result.reason
    assert any("the detector fell over" in line for line in lines), lines


def test_in_process_refuses_a_redis_url(tmp_path: Path, model_dir: Path, clip: Clip) -> None:
    config = write_app(tmp_path, model_dir, clip.path.as_uri())
    proc = heron_run(config, tmp_path / "run", "--in-process", "--redis-url", "redis://x:6379/0")
    out = Output(proc)
    assert proc.wait(timeout=60) == 1
    lines = out.rest()
    assert any("--in-process runs without Redis" in line for line in lines), lines
