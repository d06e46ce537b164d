"""Sources changed in a running `heron run` through the Pipeline API, as a user does: three live
sources added to a running pipeline, one removed mid-stream; the other two keep their frame
rate, the removed one's frames all come out of the last stage (none lost in flight), and the
status says so. With the services as processes on a private Redis, as Kubernetes runs them,
and as threads of one process."""

from __future__ import annotations

import re
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from heron.client import Client, ServerUnavailableError
from heron.v1 import control_pb2 as pb

from tests.e2e.harness import Output, heron_run
from tests.inference.conftest import NET_H, NET_W

GRPC_LINE = re.compile(r"^gRPC: .*?(127\.0\.0\.1:\d+) \(Pipeline, Detections\)")
FPS = 8
LIVE = f"lavfi://testsrc2=size=320x240:rate={FPS},realtime"
RATE_WINDOW_S = 5.0  # the control service's default pipeline_api.rate_window_s

T = TypeVar("T")


def write_live_app(folder: Path, model_dir: Path) -> Path:
    """A deepstream-app config: one live source, a muxer batching up to four, the detector."""
    path = folder / "app.txt"
    path.write_text(
        f"[source0]\nenable=1\ntype=2\nuri={LIVE}\n\n"
        f"[streammux]\nlive-source=1\nbatch-size=4\nwidth={NET_W * 2}\nheight={NET_H * 2}\n"
        "batched-push-timeout=40000\n\n"
        f"[primary-gie]\nenable=1\nconfig-file={model_dir / 'nvinfer.txt'}\n\n"
        "[sink0]\nenable=1\ntype=1\n"
    )
    return path


def eventually(probe: Callable[[], T | None], timeout_s: float, what: str) -> T:
    """`probe()` once it is not None; until then the run may still be starting (the control
    service not listening yet, no ingest report yet: UNAVAILABLE)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            got = probe()
        except ServerUnavailableError:
            got = None
        if got is not None:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def rates(client: Client) -> dict[str, float]:
    return {r.stream_id: r.fps for r in client.get_status().rates}


def states(client: Client) -> dict[str, int]:
    return {s.source.stream_id: s.state for s in client.list_sources()}


def all_playing(client: Client, ids: set[str]) -> bool | None:
    return ids <= {k for k, v in states(client).items() if v == pb.SOURCE_STATE_PLAYING} or None


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["processes", "in-process"])
def test_three_sources_added_one_removed_the_others_keep_their_rate(
    tmp_path: Path, model_dir: Path, mode: str
) -> None:
    extra = ("--in-process",) if mode == "in-process" else ()
    proc = heron_run(write_live_app(tmp_path, model_dir), tmp_path / "run", *extra)
    out = Output(proc)
    try:
        target = out.wait_for(GRPC_LINE, timeout=60).group(1)
        with Client(target) as client:
            eventually(lambda: all_playing(client, {"source-0"}), 60, "source-0 playing")
            added = [client.add_source(LIVE, stream_id=f"cam-{i}") for i in range(3)]
            assert [(a.source.stream_id, a.state) for a in added] == [
                (f"cam-{i}", pb.SOURCE_STATE_CONNECTING) for i in range(3)
            ]
            everyone = {"source-0", "cam-0", "cam-1", "cam-2"}
            eventually(lambda: all_playing(client, everyone), 10, "every source playing")
            time.sleep(RATE_WINDOW_S + 1)
            before = rates(client)
            removed = client.remove_source("cam-1")
            time.sleep(RATE_WINDOW_S + 1)
            after = rates(client)
            gone = client.get_source("cam-1")
            seen = frames_of(client, "cam-1", removed.frames)
            status = client.get_status()
    finally:
        proc.terminate()
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM, "\n".join(out.rest())
    assert set(before) == everyone, before
    assert all(FPS * 0.75 <= fps <= FPS * 1.25 for fps in before.values()), before
    assert set(after) == everyone - {"cam-1"}, after
    for stream_id, fps in after.items():
        assert fps == pytest.approx(before[stream_id], rel=0.25), (before, after)
    assert gone.state == pb.SOURCE_STATE_REMOVED
    assert gone.frames == removed.frames > 0
    # Every frame cam-1 published before it went came out of the last stage, once.
    assert sorted(seen) == list(range(removed.frames))
    assert set(seen.values()) == {1}
    assert {s.name for s in status.services} >= {"ingest", "streammux", "inference", "control"}
    assert all(s.serving for s in status.services), status.services


def frames_of(client: Client, stream_id: str, count: int) -> Counter[int]:
    """Frame numbers of `stream_id` in the last stage's metadata, from the oldest held."""
    seen: Counter[int] = Counter()
    with client.subscribe(stream_ids=[stream_id], from_oldest=True) as events:
        deadline = time.monotonic() + 30
        for event in events:
            assert event.WhichOneof("event") == "frame", event
            seen[event.frame.frame.frame_number] += 1
            if len(seen) == count or time.monotonic() > deadline:
                break
    return seen
