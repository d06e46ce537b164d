"""RTSP ingest against a real RTSP server (Heron's GStreamer server, tests/support/rtsp_source):
the server killed and restarted, and stalled, while ingest reads it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from heron.core.framestore import FrameReader
from heron.ingest.state import StreamState

from tests.ingest.conftest import Ingest, write_pipeline

rtsp_source = pytest.importorskip(
    "tests.support.rtsp_source", reason="the RTSP test server (GStreamer) is not available"
)

STALL_TIMEOUT_S = 2


@pytest.fixture
def camera() -> Iterator[Any]:
    try:
        with rtsp_source.serve_test_pattern() as source:
            yield source
    except (ImportError, ValueError) as e:  # GStreamer's RTSP server typelib missing
        pytest.skip(f"cannot start the RTSP test server: {e}")


def _start(run_ingest: Callable[..., Ingest], tmp_path: Path, url: str, protocol: int) -> Ingest:
    source = {
        "type": "rtsp",
        "uri": url,
        "select_rtp_protocol": protocol,
        "rtsp_reconnect_interval_sec": STALL_TIMEOUT_S,
    }
    return run_ingest(
        write_pipeline(tmp_path / "p.yaml", {0: source}),
        frame_location="shm",
        frame_stream_max_len=1000,
        shm_slots=64,
        reconnect={"initial_s": 0.1, "max_s": 0.5},
    )


def _numbers(ingest: Ingest, last: int) -> list[int]:
    reader = FrameReader()
    try:
        return [rtsp_source.frame_number(reader.read(r)) for r in ingest.frames("source-0")[-last:]]
    finally:
        reader.close()


@pytest.mark.parametrize("protocol", [4, 0], ids=["tcp", "auto"])
def test_server_restart_reconnects_and_frames_resume(
    run_ingest: Callable[..., Ingest], tmp_path: Path, camera: Any, protocol: int
) -> None:
    ingest = _start(run_ingest, tmp_path, camera.url, protocol)
    worker = ingest.service.workers[0]
    ingest.wait(lambda: worker.published >= 10, what="first frames")
    before = _numbers(ingest, 5)
    assert before == sorted(before)

    camera.stop()
    ingest.wait(lambda: "reconnecting" in ingest.event_kinds("source-0"), what="disconnect")
    published = worker.published
    camera.start()
    ingest.wait(lambda: worker.published >= published + 10, what="frames after the restart")

    kinds = ingest.event_kinds("source-0")
    assert kinds[0] == "started"
    assert "reconnecting" in kinds
    assert kinds[-1] == "started"  # playing again
    assert worker.machine.state is StreamState.PLAYING
    assert ingest.metric("heron_ingest_reconnects_total", stream="source-0") >= 1
    after = _numbers(ingest, 5)
    assert after == sorted(after) and after[0] > before[-1]  # new frames of the pattern
    refs = ingest.frames("source-0")
    assert [r.frame_number for r in refs] == list(range(len(refs)))  # numbering continues


def test_stalled_server_is_detected_within_the_timeout_and_recovers(
    run_ingest: Callable[..., Ingest], tmp_path: Path, camera: Any
) -> None:
    ingest = _start(run_ingest, tmp_path, camera.url, 4)
    worker = ingest.service.workers[0]
    ingest.wait(lambda: worker.published >= 10, what="first frames")

    camera.stall()
    stalled_at = time.monotonic()
    ingest.wait(
        lambda: "reconnecting" in ingest.event_kinds("source-0"),
        timeout=STALL_TIMEOUT_S * 3,  # a broken timeout blocks forever; this only bounds the test
        what="the stall to be noticed",
    )
    noticed_after = time.monotonic() - stalled_at
    event = next(e for e in ingest.events() if e.WhichOneof("event") == "reconnecting")
    assert "timed out" in event.reconnecting.reason or "ended" in event.reconnecting.reason
    print(f"stall noticed after {noticed_after:.2f} s (timeout {STALL_TIMEOUT_S} s)")

    published = worker.published
    camera.resume()
    ingest.wait(lambda: worker.published >= published + 10, what="frames after the stall")
    assert worker.machine.state is StreamState.PLAYING
