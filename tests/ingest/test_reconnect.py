"""Live sources that are down or stalled: reconnect with backoff, events, give up when told to.

These need no RTSP server: a closed port refuses, a socket that accepts and never answers
stalls. test_rtsp.py covers a real server going away and coming back.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from heron.core.media_uri import parse_uri
from heron.ingest.decoders import PyAvDecoder
from heron.ingest.decoding import OpenRequest
from heron.ingest.errors import SourceUnavailableError
from heron.ingest.state import StreamState

from tests.ingest.conftest import Ingest, write_pipeline
from tests.support.redis_server import free_port


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never sends a byte (a hung camera)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield int(server.getsockname()[1])


def test_refused_camera_is_retried_then_given_up(
    run_ingest: Callable[..., Ingest], tmp_path: Path
) -> None:
    source = {
        "type": "rtsp",
        "uri": f"rtsp://127.0.0.1:{free_port()}/ds-test",
        "rtsp_reconnect_attempts": 2,
        "select_rtp_protocol": 4,
    }
    ingest = run_ingest(
        write_pipeline(tmp_path / "p.yaml", {0: source}),
        reconnect={"initial_s": 0.05, "max_s": 0.1},
    )
    ingest.wait_finished()

    assert ingest.event_kinds("source-0") == ["reconnecting", "reconnecting", "error"]
    events = [e for e in ingest.events() if e.stream_id == "source-0"]
    assert [e.reconnecting.attempt for e in events[:2]] == [1, 2]
    assert all(0 <= e.reconnecting.backoff_seconds <= 0.1 for e in events[:2])
    assert "Connection refused" in events[0].reconnecting.reason
    assert events[2].error.fatal
    assert "gave up after 2 reconnect attempts" in events[2].error.message
    assert ingest.service.workers[0].machine.state is StreamState.ERROR
    assert ingest.metric("heron_ingest_reconnects_total", stream="source-0") == 2
    assert (
        ingest.metric(
            "heron_ingest_stream_state", stream="source-0", heron_ingest_stream_state="error"
        )
        == 1
    )


def test_stalled_camera_is_detected_by_the_read_timeout(
    run_ingest: Callable[..., Ingest], tmp_path: Path, silent_server: int
) -> None:
    source = {
        "type": "rtsp",
        "uri": f"rtsp://127.0.0.1:{silent_server}/ds-test",
        "rtsp_reconnect_interval_sec": 1,
        "select_rtp_protocol": 4,
    }
    ingest = run_ingest(
        write_pipeline(tmp_path / "p.yaml", {0: source}),
        reconnect={"initial_s": 0.05, "max_s": 0.1},
    )
    # Without the timeout av.open would block forever on this server.
    ingest.wait(
        lambda: ingest.event_kinds("source-0")[:2] == ["reconnecting", "reconnecting"],
        timeout=15,
        what="two reconnect attempts",
    )
    assert ingest.service.workers[0].machine.state is StreamState.RECONNECTING


def test_a_camera_that_never_answers_is_reported_as_a_timeout(silent_server: int) -> None:
    """FFmpeg's RTSP open fails with "Invalid data found" when its timeout fires on a server that
    accepted the connection; the reason ingest reports (events, terminal) says what happened."""
    target = parse_uri(f"rtsp://127.0.0.1:{silent_server}/ds-test")
    request = OpenRequest(target, options={"rtsp_transport": "tcp"}, timeout_s=0.5)
    with pytest.raises(SourceUnavailableError) as caught:
        next(iter(PyAvDecoder().frames(request)))
    assert "timed out (no answer within 0.5 s; the server accepted the connection)" in str(
        caught.value
    )
    assert "InvalidDataError" not in str(caught.value)
