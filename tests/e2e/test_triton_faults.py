"""Triton SIGKILLed under a whole `heron run` (issue 21, "Faults").

The lossless pipeline of the fault matrix (tests/e2e/test_fault_matrix.py: a 2,500-frame clip
whose frames carry their numbers, inference, the tracker, an MP4) with the detector served by a
real `tritonserver` (the nvidia-pytriton wheel's, on the CPU, the test detector's ONNX run by
ONNX Runtime in the python backend: tests/support/triton_server.py). Once frames flow, a thread
SIGKILLs Triton (with its python backend stubs) `KILLS` times, keeps it down `DOWN_S`, and
starts it again on the same ports. For each outage it asserts what the inference service says
on its own HTTP endpoint: `/readyz` answers 503 with the `backend` check failed while Triton is
down, 200 again once it is back, and frames come out of inference again. After the run: it ended
by itself with exit 0 and `frames lost: none`, the MP4 holds every number of the clip once and in
order, inference's log shows the stage's backoff (`retrying in 0.2 s`, then doubled) and its
`heron_inference_backend_unavailable_total` grew with each outage.

The measured times (kill to not ready, Triton ready to inference ready, Triton ready to frames
out) are printed with `-s`; docs/run.md, "Fault matrix", quotes them.
"""

from __future__ import annotations

import http.client
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from heron.run.options import RunOptions
from heron.run.plan import RunPlan, has_main
from heron.run.runner import RunRequest, Stages, run_pipeline

from tests.e2e.conftest import Clip, write_app
from tests.e2e.model import BBOX_NAME, COV_NAME, INPUT_NAME
from tests.e2e.test_faults import numbers_in
from tests.inference.conftest import NET_H, NET_W
from tests.ingest.clips import BITS, make_clip
from tests.support.triton_server import TritonServer, TritonUnavailableError, write_onnx_model

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not has_main("heron.overlay"), reason="heron.overlay is not installed"),
]

MODEL = "tiny_detectnet"
FRAMES = 2500
KILLS = 3
DOWN_S = 2.0  # Triton stays dead this long before it is started again (its start adds ~2-5 s)
FIRST_KILL_AT = 150  # frames out of inference before the first kill: mid-stream
BETWEEN = 300  # frames out of inference after a recovery before the next kill
RETRY = re.compile(r"^inference: Triton at .*; retrying in (\d+\.\d) s$")


@pytest.fixture(scope="module")
def triton_clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    """The fault matrix's clip: frames that carry their numbers (the blocks wrap at 1,024)."""
    path = make_clip(tmp_path_factory.mktemp("triton-clip") / "clip.mp4", frames=FRAMES, fps=25)
    return Clip(path, FRAMES, False)


@pytest.fixture
def triton(tmp_path: Path, model_dir: Path) -> Iterator[TritonServer]:
    """The run's detector (tests/e2e/conftest.py) in a Triton of its own, on free ports."""
    repository = tmp_path / "triton" / "models"
    cells = (NET_H // 16, NET_W // 16)
    write_onnx_model(
        repository,
        MODEL,
        model_dir / "tiny.onnx",
        input_name=INPUT_NAME,
        input_dims=(3, NET_H, NET_W),
        outputs={COV_NAME: (2, *cells), BBOX_NAME: (8, *cells)},
        max_batch_size=4,
    )
    try:
        server = TritonServer(repository, tmp_path / "triton")
    except TritonUnavailableError as e:
        pytest.skip(str(e))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Outage:
    """One kill of Triton, timed from the test's side (seconds)."""

    not_ready_s: float = 0.0  # SIGKILL → inference's /readyz answers 503
    triton_start_s: float = 0.0  # start → Triton answers ready (the outage is DOWN_S + this)
    ready_s: float = 0.0  # Triton ready → inference's /readyz answers 200
    flowing_s: float = 0.0  # Triton ready → inference's frame count grows
    unavailable_total: float = 0.0  # heron_inference_backend_unavailable_total after it


@dataclass
class TritonKiller:
    """Kills and restarts `server` from a thread while the run goes on, asserting as it goes
    what the inference service at `endpoint` (its /readyz and /metrics) says."""

    server: TritonServer
    endpoint: str  # 127.0.0.1:PORT of inference's /metrics and /readyz
    outages: list[Outage] = field(default_factory=list)
    error: BaseException | None = None
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="kill-triton", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self._inferred_reach(FIRST_KILL_AT, timeout=120)
            for n in range(KILLS):
                if n:
                    self._inferred_reach(self.inferred() + BETWEEN, timeout=60)
                self.outages.append(self._outage())
        except BaseException as e:  # reported by the test's thread
            self.error = e
            self.server.stop()  # a Triton left dead would hold the run until its safety net

    def _inferred_reach(self, frames: float, timeout: float) -> None:
        wait_until(lambda: self.inferred() >= frames, timeout, f"{frames:g} frames inferred")

    def _outage(self) -> Outage:
        o = Outage()
        assert self.ready()[0], f"inference not ready before the kill: {self.ready()[1]}"
        killed = time.monotonic()
        self.server.kill()
        wait_until(lambda: not self.ready()[0], 10, "inference /readyz says not ready")
        o.not_ready_s = time.monotonic() - killed
        ok, body = self.ready()
        failed = {c["name"]: c["detail"] for c in body.get("failed", [])}
        assert not ok and failed == {"backend": f"{MODEL}: not ready"}, body
        deadline = killed + DOWN_S
        while time.monotonic() < deadline:  # down all along, however often it is asked
            assert not self.ready()[0], "inference said ready while Triton was dead"
            time.sleep(0.2)
        starting = time.monotonic()
        self.server.start()  # returns once Triton answers ready
        up = time.monotonic()
        o.triton_start_s = up - starting
        before = self.inferred()
        wait_until(lambda: self.ready()[0], 30, "inference /readyz says ready again")
        o.ready_s = time.monotonic() - up
        wait_until(lambda: self.inferred() > before, 30, "frames out of inference again")
        o.flowing_s = time.monotonic() - up
        o.unavailable_total = self.metric("heron_inference_backend_unavailable_total")
        return o

    def ready(self) -> tuple[bool, dict[str, Any]]:
        status, body = self._get("/readyz")
        return status == http.client.OK, json.loads(body) if body else {}

    def inferred(self) -> float:
        return self.metric('heron_inference_frames_total{result="inferred"}')

    def metric(self, sample: str) -> float:
        _, body = self._get("/metrics")
        for line in body.splitlines():
            if line.startswith(f"{sample} "):
                return float(line.split()[1])
        return 0.0

    def _get(self, path: str) -> tuple[int, str]:
        """(status, body); (0, "") while inference does not listen (starting, restarted)."""
        host, port = self.endpoint.split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read().decode()
        except OSError:
            return 0, ""
        finally:
            conn.close()


def wait_until(done: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(0.05)


def test_triton_killed_under_a_lossless_run_loses_no_frame(
    tmp_path: Path, model_dir: Path, triton_clip: Clip, triton: TritonServer
) -> None:
    output = tmp_path / "out.mp4"
    config = write_app(
        tmp_path, model_dir, triton_clip.path.as_uri(), output=output, tracker=True, osd=False
    )
    options = RunOptions(
        backend="triton",
        triton_url=triton.grpc_url,
        triton_model=MODEL,
        grpc_listen="127.0.0.1:0",  # free ports: other runs share the machine
        detector_listen="127.0.0.1:0",
    )
    killers: list[TritonKiller] = []

    def on_started(plan: RunPlan, _stages: Stages) -> None:
        assert plan.topology == "lossless"
        (inference,) = [s for s in plan.services if s.module == "heron.inference"]
        killers.append(TritonKiller(triton, f"127.0.0.1:{inference.metrics_port}"))
        killers[0].start()

    lines: list[str] = []
    started = time.monotonic()
    request = RunRequest(
        config=config,
        run_dir=tmp_path / "run",
        options=options,
        max_duration_s=240,  # a safety net: the run ends long before
        on_started=on_started,
    )
    result = run_pipeline(request, out=lines.append)
    took = time.monotonic() - started
    (killer,) = killers
    assert killer.thread is not None
    killer.thread.join(timeout=60)
    assert not killer.thread.is_alive(), f"the run ended before Triton's last outage: {lines}"
    if killer.error is not None:
        raise AssertionError(f"{killer.error}\n" + "\n".join(lines)) from killer.error
    outages = killer.outages
    print(f"\nrun {took:.1f} s; outages: {outages}")

    assert len(outages) == KILLS
    totals = [0.0, *(o.unavailable_total for o in outages)]
    assert all(a < b for a, b in itertools.pairwise(totals)), totals  # grew in every outage
    # The stage's backoff (retry_initial_s 0.2 s doubled per failure in a row, up to
    # retry_max_s 5 s), from the first wait again after each outage.
    waits = [float(m.group(1)) for m in map(RETRY.search, logged(tmp_path / "run")) if m]
    streaks: list[list[float]] = []
    for wait in waits:
        if wait == 0.2 or not streaks:
            streaks.append([])
        streaks[-1].append(wait)
    assert len(streaks) == KILLS, waits
    for streak in streaks:
        assert len(streak) >= 2, waits  # backed off, not one retry that found Triton back
        assert streak == [round(min(0.2 * 2**i, 5.0), 1) for i in range(len(streak))], waits

    assert result.exit_code == 0, lines
    assert "frames lost: none" in lines, lines
    assert result.restarts["inference"] == 0, lines  # retried in place, never restarted
    assert result.frames == {"source-0": triton_clip.frames}, lines
    numbers = [n % 2**BITS for n in range(triton_clip.frames)]
    assert numbers_in(output) == numbers


def logged(run_dir: Path) -> list[str]:
    """The messages of inference's JSON log lines."""
    messages = []
    for line in (run_dir / "inference.log").read_text().splitlines():
        try:
            messages.append(str(json.loads(line).get("message", "")))
        except ValueError:
            messages.append(line)
    return messages
