"""`heron run` end to end: real services, a real clip, a real (or private) redis-server."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import psutil
from heron.run.plan import has_main
from heron.run.shm import leftover_segments

from tests.e2e.conftest import Clip, count_frames, write_app
from tests.e2e.harness import Output, heron_run, port_closed, service_process

PERF = re.compile(r"^\*\*PERF:  (\d+\.\d\d) \((\d+\.\d\d)\)\t$")
REDIS_STARTED = re.compile(r"started redis-server on 127\.0\.0\.1:(\d+)")


def test_run_survives_a_killed_service_and_exits_by_itself_after_every_frame(
    tmp_path: Path, model_dir: Path, clip: Clip
) -> None:
    """The chain on the clip (into an MP4 when the overlay is installed), its private Redis,
    inference SIGKILLed mid-run: restarted, and every frame still reaches the end."""
    output = tmp_path / "out.mp4" if has_main("heron.overlay") else None
    config = write_app(tmp_path, model_dir, clip.path.as_uri(), output=output)
    proc = heron_run(config, tmp_path / "run")
    out = Output(proc)
    try:
        port = int(out.wait_for(REDIS_STARTED).group(1))
        out.wait_for(re.compile(r"^\*\*PERF:  [1-9]"), timeout=90)  # frames are flowing
        inference = service_process(proc.pid, "heron.inference")
        inference.kill()
        assert proc.wait(timeout=120) == 0, "\n".join(out.rest())
    finally:
        proc.kill()
    lines = out.rest()
    assert "**PERF:  FPS 0 (Avg)\t" in lines
    assert sum(bool(PERF.match(line)) for line in lines) >= 2, lines
    summary = f"frames out of the last stage: source-0: {clip.frames}; restarts: inference 1"
    assert summary in lines
    assert any("every source ended and its last frame reached the sinks" in line for line in lines)
    assert not inference.is_running()
    assert port_closed(port), "the private redis-server is still running"
    for name in ("ingest", "inference"):  # services log to the run folder, restarts appended
        assert (tmp_path / "run" / f"{name}.log").stat().st_size > 0
    if output is not None:
        assert count_frames(output) == clip.frames


def test_sigterm_stops_every_process_and_cleans_up(
    tmp_path: Path, model_dir: Path, short_clip: Clip
) -> None:
    # file-loop: a source that never ends, through the muxer (the live topology).
    config = write_app(tmp_path, model_dir, short_clip.path.as_uri(), loop=True)
    proc = heron_run(config, tmp_path / "run")
    out = Output(proc)
    try:
        out.wait_for(re.compile(r"^\*\*PERF:  [1-9]"), timeout=90)
        family = psutil.Process(proc.pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in family)
        for part in ("heron.ingest", "heron.streammux", "heron.inference", "redis-server"):
            assert part in names
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    finally:
        proc.kill()
    assert code == 128 + signal.SIGTERM
    assert any("stopped by SIGTERM" in line for line in out.rest())
    _, alive = psutil.wait_procs(family, timeout=5)
    assert not alive, f"orphans: {alive}"
    assert leftover_segments([p.pid for p in family]) == []
