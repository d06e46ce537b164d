"""`heron run` with its Triton unreachable: the reason on the terminal, then it gives up."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from heron.run.redis_local import free_port

from tests.e2e.model import write_detector
from tests.inference.conftest import NET_H, NET_W, write_nvinfer
from tests.ingest.clips import make_clip

# Each start waits this long for Triton (backend.ready_timeout_s, 60 s by default).
READY_TIMEOUT_S = 0.5


@pytest.fixture
def app(tmp_path: Path) -> Path:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    pytest.importorskip("tritonclient.grpc")
    onnx = write_detector(tmp_path / "tiny.onnx", NET_H, NET_W)
    write_nvinfer(tmp_path, onnx, extra="batch-size=1")
    clip = make_clip(tmp_path / "clip.mp4", frames=24)
    path = tmp_path / "app.txt"
    path.write_text(
        f"[source0]\nenable=1\ntype=2\nuri={clip.as_uri()}\n\n"
        f"[primary-gie]\nenable=1\nconfig-file={tmp_path / 'nvinfer.txt'}\n\n"
        "[sink0]\nenable=1\ntype=1\n"
    )
    return path


def test_a_run_whose_triton_stays_down_gives_up_with_the_reason(app: Path, tmp_path: Path) -> None:
    port = free_port()  # nobody listens there
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["HERON_BACKEND__READY_TIMEOUT_S"] = str(READY_TIMEOUT_S)  # children inherit it
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "heron.run", "run", "-c", str(app),
         "--run-dir", str(tmp_path / "run"), "--grpc-listen", "127.0.0.1:0",
         "--detector-listen", "127.0.0.1:0", "--backend", "triton",
         "--triton-url", f"127.0.0.1:{port}", "--triton-model", "tiny",
         "--max-unready-crashes", "2"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    took = time.monotonic() - started
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert took < 60, f"took {took:.0f} s\n{out}"
    reason = (
        f"BackendUnavailableError: Triton at 127.0.0.1:{port} was not ready within "
        f"{READY_TIMEOUT_S:g} s (backend.ready_timeout_s): StatusCode.UNAVAILABLE"
    )
    died = re.compile(
        rf"^inference died \(exit code 1: service failed: {re.escape(reason)}.*\); "
        r"restarting in 0\.5 s \(1 of 2 crashes in a row before it became ready\)$",
        re.MULTILINE,
    )
    assert died.search(done.stdout), out
    gave_up = re.compile(
        r"^\*\* gave up on inference: it crashed 2 times in a row in \d+ s without ever "
        rf"becoming ready \(the last time: exit code 1: service failed: {re.escape(reason)}",
        re.MULTILINE,
    )
    assert gave_up.search(done.stdout), out
    assert "restarts: inference 1" in done.stdout
    assert done.stdout.rstrip().splitlines()[-2].endswith("exit code 1"), out
