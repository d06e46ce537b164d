"""`python -m heron.ingest` as a process: readiness, /metrics, SIGTERM, exit codes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.ingest.conftest import write_pipeline
from tests.support.redis_server import free_port

REPO = Path(__file__).resolve().parents[2]


def _start(pipeline: Path, redis_url: str, port: int, **env: str) -> subprocess.Popen[str]:
    environ = {
        **os.environ,
        "HERON_REDIS_URL": redis_url,
        "HERON_METRICS__HOST": "127.0.0.1",
        "HERON_METRICS__PORT": str(port),
        "HERON_LOG__FORMAT": "console",
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "heron.ingest", "-c", str(pipeline)],
        cwd=REPO,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


def _published(metrics: str) -> float:
    """heron_ingest_frames_published_total of source-0 in a /metrics page (0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if sample.name == "heron_ingest_frames_published_total" and (
                sample.labels.get("stream") == "source-0"
            ):
                return sample.value
    return 0.0


def test_live_service_is_ready_serves_metrics_and_stops_on_sigterm(
    redis_url: str, tmp_path: Path
) -> None:
    uri = "lavfi://testsrc2=size=160x120:rate=30,realtime"
    pipeline = write_pipeline(tmp_path / "p.yaml", {0: {"type": "uri", "uri": uri}})
    port = free_port()
    proc = _start(pipeline, redis_url, port)
    try:
        deadline = time.monotonic() + 20
        while _get(port, "/readyz")[0] != 200:
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "ingest never became ready"
            time.sleep(0.1)
        # The counter is there at 0 from the start (docs/observability.md): wait for a frame.
        while _published(_get(port, "/metrics")[1]) < 1:
            assert time.monotonic() < deadline, "no frames counted in /metrics"
            time.sleep(0.1)
        segments = _segments(proc.pid)
        assert segments, "the stream's shared-memory ring was not created"
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=20)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, output
    assert not _segments(proc.pid), "rings were not unlinked on SIGTERM"


def _segments(pid: int) -> list[str]:
    shm = Path("/dev/shm")
    return [p.name for p in shm.glob(f"heron-source-0-{pid}-*")] if shm.is_dir() else []


def test_file_pipeline_runs_to_the_end_and_exits(
    redis_url: str, tmp_path: Path, clip: Path
) -> None:
    pipeline = write_pipeline(tmp_path / "p.yaml", {0: {"type": "uri", "uri": f"file://{clip}"}})
    proc = _start(
        pipeline, redis_url, free_port(), HERON_EXIT_WHEN_DONE="true", HERON_FRAME_LOCATION="jpeg"
    )
    output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, output
    assert "stream source-0 ended after 48 frames" in output


@pytest.mark.parametrize(
    ("sources", "message"),
    [
        ({0: {"type": "uri", "uri": "ftp://host/clip.mp4"}}, "unsupported scheme 'ftp'"),
        ({0: {"type": "uri", "uri": "file:///no/such.mp4"}}, "'/no/such.mp4' does not exist"),
        ({0: {"type": 7}}, "expected source type 1 (camera_v4l2)"),
    ],
)
def test_bad_pipeline_exits_2_with_the_reason(
    redis_url: str, tmp_path: Path, sources: dict[int, dict[str, object]], message: str
) -> None:
    pipeline = write_pipeline(tmp_path / "p.yaml", sources)
    proc = _start(pipeline, redis_url, free_port())
    output = proc.communicate(timeout=30)[0]
    assert proc.returncode == 2
    assert message in output
    assert str(pipeline) in output


def test_missing_pipeline_file_exits_2(redis_url: str, tmp_path: Path) -> None:
    proc = _start(tmp_path / "absent.txt", redis_url, free_port())
    output = proc.communicate(timeout=30)[0]
    assert proc.returncode == 2
    assert "Invalid value for '--pipeline-config'" in output and "absent.txt" in output


def test_a_misused_option_exits_2_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    from heron.ingest.__main__ import main

    assert main(["--settings"]) == 2
    assert "Option '--settings' requires an argument" in capsys.readouterr().err
    assert main(["--config", "s.yaml"]) == 2  # the pipeline is -c; the settings --settings
    assert "No such option: --config" in capsys.readouterr().err
