"""`heron run` serves its detections over gRPC: a subscriber that connects when the run
prints where, from the oldest frame held, receives every frame of the clip once — with the
services as processes on Redis, and as threads of one process."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from heron.core.grpc import open_channel
from heron.v1.control_pb2 import SubscribeRequest
from heron.v1.control_pb2_grpc import DetectionsStub

from tests.e2e.conftest import Clip, write_app
from tests.e2e.harness import Output, heron_run

GRPC_LINE = re.compile(r"^gRPC: .*?(127\.0\.0\.1:\d+) \(Pipeline, Detections\)")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["processes", "in-process"])
def test_a_subscriber_receives_every_frame_of_the_clip_once(
    tmp_path: Path, model_dir: Path, clip: Clip, mode: str
) -> None:
    config = write_app(tmp_path, model_dir, clip.path.as_uri())
    extra = ("--in-process",) if mode == "in-process" else ()
    proc = heron_run(config, tmp_path / "run", *extra)
    out = Output(proc)
    try:
        target = out.wait_for(GRPC_LINE, timeout=60).group(1)
        seen: Counter[int] = Counter()
        with open_channel(target) as channel:
            events = DetectionsStub(channel).Subscribe(
                SubscribeRequest(from_oldest=True), wait_for_ready=True, timeout=240
            )
            for event in events:
                assert event.WhichOneof("event") == "frame", event
                seen[event.frame.frame.frame_number] += 1
                if len(seen) == clip.frames:
                    events.cancel()
                    break
        assert sorted(seen) == list(range(clip.frames))
        assert set(seen.values()) == {1}
        assert proc.wait(timeout=240) == 0, "\n".join(out.rest())
    finally:
        proc.kill()
