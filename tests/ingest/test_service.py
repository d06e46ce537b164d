"""The ingest service end to end: real clips, a real redis-server, frames read back."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from heron.core import streams
from heron.core.bus import BusSettings, RedisBus
from heron.core.framestore import FrameReader, Letterbox
from heron.ingest.service import IngestCrashError
from heron.ingest.state import StreamState
from heron.v1.frame_pb2 import FrameRef
from prometheus_client import CollectorRegistry

from tests.ingest.clips import frame_image, read_number
from tests.ingest.conftest import CLIP_FRAMES, Ingest, write_pipeline
from tests.support.redis_server import RedisServer


@pytest.mark.parametrize("location", ["shm", "jpeg"])
def test_clip_gives_every_frame_in_order_with_its_pixels(
    run_ingest: Callable[..., Ingest], clip: Path, tmp_path: Path, location: str
) -> None:
    pipeline = write_pipeline(tmp_path / "p.yaml", {0: {"type": "uri", "uri": f"file://{clip}"}})
    ingest = run_ingest(pipeline, frame_location=location, shm_slots=64, frame_stream_max_len=100)
    ingest.wait_finished()

    refs = ingest.frames("source-0")
    assert [r.frame_number for r in refs] == list(range(CLIP_FRAMES))
    assert [r.pts for r in refs] == sorted(r.pts for r in refs)
    assert all((r.width, r.height, r.source_id) == (320, 240, 0) for r in refs)
    # Ingest stores frames as decoded: stored size = source size, identity placement.
    assert all((r.stored_width, r.stored_height) == (320, 240) for r in refs)
    assert all(r.HasField("placement") for r in refs)
    assert {Letterbox.from_proto(r) for r in refs} == {Letterbox.identity(320, 240)}
    assert {r.WhichOneof("location") for r in refs} == {location}
    reader = FrameReader()
    try:
        images = [reader.read(r) for r in refs]
    finally:
        reader.close()
    assert [read_number(image) for image in images] == list(range(CLIP_FRAMES))
    for number, image in enumerate(images):
        error = np.abs(image.astype(int) - frame_image(number).astype(int)).mean()
        assert error < 6, f"frame {number}: mean abs error {error:.1f} vs the encoded image"
    assert ingest.event_kinds("source-0") == ["started", "eos"]
    assert ingest.events()[-1].eos.frames == CLIP_FRAMES
    assert ingest.service.workers[0].machine.state is StreamState.EOS
    assert ingest.metric("heron_ingest_frames_published_total", stream="source-0") == CLIP_FRAMES


@pytest.mark.shared_data
def test_face_mask_video_gives_all_635_frames(
    run_ingest: Callable[..., Ingest], shared_data: Path, tmp_path: Path
) -> None:
    video = shared_data / "videos" / "Face_Mask_Video.mp4"
    pipeline = write_pipeline(tmp_path / "p.yaml", {0: {"type": "uri", "uri": f"file://{video}"}})
    ingest = run_ingest(pipeline, frame_location="shm", frame_stream_max_len=1000)
    ingest.wait_finished(timeout=60)

    refs = ingest.frames("source-0")
    assert [r.frame_number for r in refs] == list(range(635))
    assert {(r.width, r.height) for r in refs} == {(538, 372)}
    assert ingest.events()[-1].eos.frames == 635


def test_file_loop_restarts_the_clip_and_keeps_time_rising(
    run_ingest: Callable[..., Ingest], clip: Path, tmp_path: Path
) -> None:
    pipeline = write_pipeline(
        tmp_path / "p.yaml",
        {0: {"type": "uri", "uri": f"file://{clip}"}},
        tests={"file_loop": True},
    )
    ingest = run_ingest(pipeline, frame_location="jpeg", frame_stream_max_len=1000)
    wanted = 2 * CLIP_FRAMES + 10
    ingest.wait(lambda: ingest.service.workers[0].published >= wanted, what="two loops")
    refs = ingest.frames("source-0")[:wanted]

    assert [r.frame_number for r in refs] == list(range(wanted))
    pts = [r.pts for r in refs]
    assert all(b > a for a, b in itertools.pairwise(pts)), "pts went backwards at a loop"
    worker = ingest.service.workers[0]
    assert worker.machine.state is StreamState.PLAYING
    assert ingest.event_kinds("source-0") == ["started"]  # a loop is not an end of stream


@pytest.mark.parametrize(("interval", "kept"), [(0, 48), (1, 48), (5, 10), (48, 1), (100, 1)])
def test_drop_frame_interval_keeps_one_frame_in_n(
    run_ingest: Callable[..., Ingest], clip: Path, tmp_path: Path, interval: int, kept: int
) -> None:
    source = {"type": "uri", "uri": f"file://{clip}", "drop_frame_interval": interval}
    ingest = run_ingest(
        write_pipeline(tmp_path / "p.yaml", {0: source}),
        frame_location="jpeg",
        frame_stream_max_len=100,
    )
    ingest.wait_finished()

    refs = ingest.frames("source-0")
    step = max(interval, 1)
    assert [read_number(_image(r)) for r in refs] == list(range(0, CLIP_FRAMES, step))
    assert [r.frame_number for r in refs] == list(range(kept))
    assert ingest.metric("heron_ingest_frames_skipped_total", stream="source-0") == 48 - kept
    assert ingest.events()[-1].eos.frames == kept


def _image(ref: FrameRef) -> np.ndarray:
    reader = FrameReader()
    try:
        return reader.read(ref)
    finally:
        reader.close()


def test_latest_frame_wins_trims_the_stream_and_counts_drops(
    run_ingest: Callable[..., Ingest], clip: Path, tmp_path: Path
) -> None:
    pipeline = write_pipeline(tmp_path / "p.yaml", {0: {"type": "uri", "uri": f"file://{clip}"}})
    ingest = run_ingest(pipeline, frame_location="shm", frame_stream_max_len=10, shm_slots=12)
    ingest.wait_finished()

    refs = ingest.frames("source-0")
    assert [r.frame_number for r in refs] == list(range(CLIP_FRAMES - 10, CLIP_FRAMES))
    key = streams.frames("source-0").key
    assert ingest.metric("heron_bus_dropped_total", topic=key) == CLIP_FRAMES - 10
    # The newest frames still resolve: the ring holds more slots than the stream entries.
    assert [read_number(_image(r)) for r in refs] == list(range(CLIP_FRAMES - 10, CLIP_FRAMES))


def test_every_frame_waits_for_the_consumer_group_and_resumes(
    run_ingest: Callable[..., Ingest], clip: Path, tmp_path: Path
) -> None:
    pipeline = write_pipeline(tmp_path / "p.yaml", {0: {"type": "uri", "uri": f"file://{clip}"}})
    ingest = run_ingest(
        pipeline,
        frame_location="shm",
        backpressure="every_frame",
        consumer_group="mux",
        max_lag=4,
        frame_stream_max_len=8,
        shm_slots=8,
    )
    worker = ingest.service.workers[0]
    # No group yet: every entry counts as unread, so ingest stops at max_lag frames.
    ingest.wait(lambda: worker.published == 4, what="4 frames published")
    bus = RedisBus(BusSettings(), client=ingest.client, registry=CollectorRegistry())
    consumer = bus.consumer(streams.frames("source-0"), FrameRef, group="mux", name="c1")
    consumer.ensure_group()
    seen: list[int] = []
    reader = FrameReader()
    try:
        while len(seen) < CLIP_FRAMES:
            assert worker.published - len(seen) <= 4, "ingest ran ahead of the consumer"
            deliveries = consumer.read(count=1, block_ms=5000)
            assert deliveries, f"no frame after {len(seen)}: ingest did not resume"
            # The slot was not overwritten while the frame waited to be read.
            seen.append(read_number(reader.read(deliveries[0].message)))
            consumer.ack(deliveries)
    finally:
        reader.close()
    ingest.wait_finished()

    # Every frame arrived, in order, with its pixels: nothing was trimmed before it was read.
    # (The bus still counts the trims of acknowledged entries in heron_bus_dropped_total.)
    assert seen == list(range(CLIP_FRAMES))
    assert ingest.metric("heron_ingest_backpressure_wait_seconds_total", stream="source-0") > 0


def test_lavfi_live_source_plays_until_stopped(
    run_ingest: Callable[..., Ingest], tmp_path: Path
) -> None:
    uri = "lavfi://testsrc2=size=320x240:rate=30,realtime"
    pipeline = write_pipeline(tmp_path / "p.yaml", {0: {"type": "uri", "uri": uri}})
    ingest = run_ingest(pipeline, frame_location="jpeg", frame_stream_max_len=100)
    worker = ingest.service.workers[0]
    ingest.wait(lambda: worker.published >= 40, what="40 live frames")

    assert worker.machine.state is StreamState.PLAYING
    assert (
        ingest.metric(
            "heron_ingest_stream_state", stream="source-0", heron_ingest_stream_state="playing"
        )
        == 1
    )
    assert ingest.metric("heron_ingest_frames_per_second", stream="source-0") > 0
    ingest.stop()
    assert not worker.is_alive()
    assert ingest.event_kinds("source-0") == ["started"]  # stopping is not an end of stream
    refs = ingest.frames("source-0")
    assert {(r.width, r.height) for r in refs} == {(320, 240)}


def test_http_source_is_read_like_a_file(
    run_ingest: Callable[..., Ingest], clip: Path, tmp_path: Path
) -> None:
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(clip.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        uri = f"http://127.0.0.1:{server.server_address[1]}/{clip.name}"
        pipeline = write_pipeline(tmp_path / "p.yaml", {0: {"type": "uri", "uri": uri}})
        ingest = run_ingest(pipeline, frame_location="jpeg", frame_stream_max_len=100)
        ingest.wait_finished()
        missing = write_pipeline(tmp_path / "m.yaml", {0: {"type": "uri", "uri": uri + ".gone"}})
        absent = run_ingest(missing, pipeline="other")
        absent.wait_finished()
    finally:
        server.shutdown()
        server.server_close()
    assert [r.frame_number for r in ingest.frames("source-0")] == list(range(CLIP_FRAMES))
    # A 404 will not get better: one fatal error, no reconnect loop.
    events = absent.events("other")
    assert [e.WhichOneof("event") for e in events] == ["error"]
    assert "404" in events[0].error.message or "Not Found" in events[0].error.message


def test_multi_uri_opens_one_stream_per_copy(
    run_ingest: Callable[..., Ingest], clip: Path, tmp_path: Path
) -> None:
    sources = {
        0: {"type": "multi_uri", "uri": f"file://{clip}", "num_sources": 2},
        1: {"type": "uri", "uri": f"file://{clip}", "drop_frame_interval": 2},
    }
    ingest = run_ingest(
        write_pipeline(tmp_path / "p.yaml", sources),
        frame_location="jpeg",
        frame_stream_max_len=100,
    )
    ingest.wait_finished()

    counts = {s: len(ingest.frames(s)) for s in ("source-0", "source-1", "source-2")}
    assert counts == {"source-0": 48, "source-1": 48, "source-2": 24}
    assert {r.source_id for r in ingest.frames("source-1")} == {1}


def test_redis_gone_for_good_ends_the_service_for_a_restart(
    run_ingest: Callable[..., Ingest], tmp_path: Path, redis_server: RedisServer
) -> None:
    uri = "lavfi://testsrc2=size=160x120:rate=30,realtime"
    pipeline = write_pipeline(tmp_path / "p.yaml", {0: {"type": "uri", "uri": uri}})
    ingest = run_ingest(pipeline, frame_location="jpeg", redis_give_up_after_s=0.5)
    worker = ingest.service.workers[0]
    ingest.wait(lambda: worker.published >= 5, what="frames")
    redis_server.stop()
    ingest.wait(lambda: worker.crash is not None, what="the publisher to give up")

    assert worker.machine.state is StreamState.ERROR
    with pytest.raises(IngestCrashError, match="stream source-0 crashed: BusUnavailableError"):
        ingest.service.step()
