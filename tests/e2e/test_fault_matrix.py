"""Every service of a `heron run` pipeline SIGKILLed ten times while frames flow (issue 21).

The run goes through `run_pipeline` in this process (its services are still processes, started
by the supervisor) so the test can shorten the supervisor's restart policy: a kill more than
`fast_crash_s` after a start is not a fast crash, so every restart waits the initial 0.5 s
instead of a backoff that doubles to 10 s. Each kill waits until the killed service's successor
answered ready (`/readyz`, the supervisor's own probe), then `EVERY_S` more: every kill hits a
service that was working, not one still importing.

- **lossless** (a file clip whose frames carry their numbers, into an MP4, with the tracker):
  ingest, inference, tracker and overlay. The run must end by itself with exit 0, `frames lost`
  none, and the MP4 read back holds every number of the clip once and in order. That is the
  end-to-end form of "every acknowledged frame ends with exactly one metadata message": a stage
  restarted after its kill may publish a frame's metadata again (at least once, docs/run.md),
  the overlay draws it once, so the last stage's metadata *stream* may hold a frame twice and the
  sinks never do.
- **live** (the clip with `file-loop`, through streammux): streammux and control. A live source
  drops frames by design, so "every frame once" cannot hold; the test asserts instead that
  frames keep coming out of the last stage after each kill, that no (stream, frame number) is in
  the last stage's metadata stream twice, and (control) that the gRPC API answers again.

The in-process runner (`heron run --in-process`) has no process per stage: a thread cannot be
SIGKILLed, so its fault is a stage that raises, and the whole run ends with exit 1
(tests/e2e/test_in_process.py); nothing here applies to it.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import pytest
from heron.core import streams
from heron.run.plan import RunPlan, has_main
from heron.run.runner import RunRequest, RunResult, Stages, run_pipeline
from heron.run.supervisor import Child, RestartPolicy, Supervisor
from heron.v1.detection_pb2 import FrameMetadata

from tests.e2e.conftest import Clip, write_app
from tests.e2e.test_faults import numbers_in
from tests.ingest.clips import BITS, make_clip

CYCLES = 10
EVERY_S = 0.5  # after the successor answered ready
# Kills come at least EVERY_S after a start: none is a fast crash, every backoff stays 0.5 s.
POLICY = RestartPolicy(fast_crash_s=EVERY_S / 2, max_unready_crashes=CYCLES + 1)

# A restarted ingest resumes a file source (heron.ingest.resume): it publishes again, under their
# numbers and capture times, the frames the pipeline had not finished (their pixels died with the
# killed ingest's ring), and the overlay holds a frame whose ring is gone pending until that copy
# comes. Replaying from frame 0 put the clip's start into the MP4 once per kill; resuming after
# the newest frame on the bus lost the frames in flight.
LOSSLESS = ["ingest", "inference", "tracker", "overlay"]
LIVE = ["streammux", "control"]


@pytest.fixture(scope="module")
def matrix_clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    """Frames that carry their numbers, enough to outlast ten kills of a stage that gates the
    lossless pipeline (while it is down nothing moves)."""
    path = make_clip(tmp_path_factory.mktemp("matrix") / "matrix.mp4", frames=2500, fps=25)
    return Clip(path, 2500, False)


@dataclass
class Killer:
    """Kills `name` `cycles` times from a thread; `after_each` runs once its successor is ready."""

    stages: Supervisor
    name: str
    cycles: int = CYCLES
    after_each: Callable[[], None] = lambda: None
    finally_: Callable[[], None] = lambda: None
    killed: list[int] = field(default_factory=list)
    error: BaseException | None = None
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name=f"kill-{self.name}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            child = self.stages.child(self.name)
            for _ in range(self.cycles):
                pid = wait_ready(child, exclude=self.killed)
                time.sleep(EVERY_S)
                os.kill(pid, signal.SIGKILL)
                self.killed.append(pid)
                wait_ready(child, exclude=self.killed)
                self.after_each()
        except BaseException as e:  # reported by the test's thread
            self.error = e
        finally:
            self.finally_()


def wait_ready(child: Child, exclude: list[int], timeout: float = 60.0) -> int:
    """The pid of `child`'s current start, once it answered ready (not one of `exclude`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = child.pid
        if pid is not None and pid not in exclude and child.ready:
            return pid
        time.sleep(0.05)
    raise AssertionError(f"{child.spec.name} was not ready again within {timeout:g} s")


def run_with_killer(
    config: Path, run_dir: Path, arm: Callable[[RunPlan, Supervisor], Killer]
) -> tuple[RunResult, list[str], Killer]:
    lines: list[str] = []
    killers: list[Killer] = []

    def on_started(plan: RunPlan, stages: Stages) -> None:
        assert isinstance(stages, Supervisor)
        killers.append(arm(plan, stages))
        killers[0].start()

    request = RunRequest(
        config=config,
        run_dir=run_dir,
        policy=POLICY,
        max_duration_s=240,  # a safety net: every run here ends long before
        on_started=on_started,
    )
    result = run_pipeline(request, out=lines.append)
    (killer,) = killers
    assert killer.thread is not None
    killer.thread.join(timeout=70)  # the last successor's wait: the run must outlast it
    assert not killer.thread.is_alive(), f"the run ended before {killer.name} came back: {lines}"
    if killer.error is not None:
        raise AssertionError(f"{killer.error}\n" + "\n".join(lines)) from killer.error
    assert len(killer.killed) == CYCLES, lines
    assert result.restarts.get(killer.stages.child(killer.name).spec.name) == CYCLES, lines
    return result, lines, killer


@pytest.mark.skipif(not has_main("heron.overlay"), reason="heron.overlay is not installed")
@pytest.mark.parametrize("service", LOSSLESS)
def test_ten_kills_of_a_lossless_stage_leave_every_frame_in_the_output_once(
    tmp_path: Path, model_dir: Path, matrix_clip: Clip, service: str
) -> None:
    output = tmp_path / "out.mp4"
    config = write_app(
        tmp_path, model_dir, matrix_clip.path.as_uri(), output=output, tracker=True, osd=False
    )
    result, lines, _ = run_with_killer(
        config, tmp_path / "run", lambda _plan, stages: Killer(stages, service)
    )
    assert result.exit_code == 0, lines
    assert "frames lost: none" in lines, lines
    assert result.frames == {"source-0": matrix_clip.frames}, lines
    # Every frame whose ring died with a killed ingest was drawn from its copy, not held until
    # the overlay's redelivery limit (~30 s) and then given up on: the restarted ingest must be
    # free to publish the copies while the stale frames wait (heron.ingest.backpressure).
    overlay_log = (tmp_path / "run" / "overlay.log").read_text()
    assert "gave up waiting for a copy" not in overlay_log
    numbers = [n % 2**BITS for n in range(matrix_clip.frames)]  # the blocks wrap at 1024
    assert numbers_in(output) == numbers


@pytest.mark.parametrize("service", LIVE)
def test_ten_kills_of_a_live_pipelines_service_keep_frames_flowing_none_twice(
    tmp_path: Path, model_dir: Path, short_clip: Clip, service: str
) -> None:
    if not has_main(f"heron.{service}"):
        pytest.skip(f"heron.{service} is not installed")
    import redis

    config = write_app(tmp_path, model_dir, short_clip.path.as_uri(), loop=True, tracker=True)
    seen: list[int] = []
    grpc_answers: list[int] = []

    def arm(plan: RunPlan, stages: Supervisor) -> Killer:
        assert plan.topology == "live"
        url = plan.services[0].child.env["HERON_REDIS_URL"]
        client = redis.Redis.from_url(url)
        key = streams.metadata(plan.final_stage).key

        def flowing() -> None:
            """Frames come out of the last stage after this kill (within 30 s)."""
            before = client.xinfo_stream(key)["entries-added"]
            deadline = time.monotonic() + 30
            while (now := client.xinfo_stream(key)["entries-added"]) <= before:
                assert time.monotonic() < deadline, f"no frame out after kill {len(seen) + 1}"
                time.sleep(0.1)
            seen.append(now)

        def finish() -> None:
            try:
                entries = cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(key))
                if service == "control":
                    grpc_answers.append(list_sources(tmp_path / "run" / "control.json"))
                counts = collections.Counter(
                    (m.frame.stream_id, m.frame.frame_number)
                    for m in (FrameMetadata.FromString(f[b"pb"]) for _, f in entries)
                )
                twice = {k: n for k, n in counts.items() if n > 1}
                assert not twice, f"in the last stage's metadata more than once: {twice}"
            finally:
                client.close()
                os.kill(os.getpid(), signal.SIGTERM)  # a live run ends when stopped

        return Killer(stages, service, after_each=flowing, finally_=finish)

    result, lines, _ = run_with_killer(config, tmp_path / "run", arm)
    assert result.exit_code == 128 + signal.SIGTERM, lines
    assert len(seen) == CYCLES
    if service == "control":
        assert grpc_answers == [1]


def list_sources(settings: Path) -> int:
    """How many sources the control service's gRPC API lists (it waits for the API)."""
    import grpc
    from heron.v1.control_pb2 import ListSourcesRequest
    from heron.v1.control_pb2_grpc import PipelineStub

    listen = json.loads(settings.read_text())["grpc"]["listen"]
    with grpc.insecure_channel(listen) as channel:
        reply = PipelineStub(channel).ListSources(
            ListSourcesRequest(), wait_for_ready=True, timeout=20
        )
    return len(reply.sources)
