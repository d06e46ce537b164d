"""AddSource / RemoveSource applied by a running ingest: sources come and go while the others
keep publishing, refusals name their field, removals flush, and a restart runs the same sources.

On in-memory streams (as `heron run --in-process`), one test on a real Redis.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from heron.core import streams
from heron.core.bus import BusSettings, MemoryStreams, MemoryTransport, RedisTransport
from heron.core.commands import ReplyCode
from heron.core.framestore import FrameReader
from heron.core.plan.settings.streammux import StreammuxSettings
from heron.core.runtime import build_context, load_settings
from heron.ingest.store import ShmPixelStore
from heron.streammux.service import Streammux
from heron.v1.commands_pb2 import Command
from heron.v1.control_pb2 import SetParametersRequest, SourceState
from heron.v1.frame_pb2 import FrameBatch, FrameRef
from heron.v1.stream_pb2 import SourceType, StreamEvent
from prometheus_client import CollectorRegistry

from tests.ingest.conftest import CLIP_FRAMES
from tests.ingest.inprocess import LIVE, PIPELINE, Live, StartIngest, live_pipeline, starter, wait
from tests.support.inprocess import no_forced_exit

PLAYING = SourceState.SOURCE_STATE_PLAYING
REMOVED = SourceState.SOURCE_STATE_REMOVED


@pytest.fixture
def memory() -> MemoryStreams:
    return MemoryStreams()


@pytest.fixture
def start_ingest(memory: MemoryStreams) -> Iterator[StartIngest]:
    """Ingest on in-memory streams; a second start shares them (a restarted pod)."""
    transport = MemoryTransport(memory)
    yield from starter(transport, transport.bus(BusSettings(), CollectorRegistry()))


@pytest.fixture
def start_redis_ingest(redis_url: str) -> Iterator[StartIngest]:
    transport = RedisTransport()
    bus = transport.bus(BusSettings(url=redis_url), CollectorRegistry())
    # Its own pipeline name: REDIS_URL may name a Redis other tests use too.
    yield from starter(transport, bus, redis_url=redis_url, pipeline=f"rt-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def streammux(memory: MemoryStreams) -> Iterator[Streammux]:
    """The muxer on the same streams, stepping in a thread. Its SCAN runs only every 5 s: a
    source it picks up sooner was found by its StreamEvent.started."""
    settings = load_settings(
        StreammuxSettings,
        metrics={"port": 0},
        pipeline=PIPELINE,
        output_location="jpeg",
        discovery_interval_s=5.0,
        read_block_ms=50,
    )
    ctx = build_context(
        settings, CollectorRegistry(), exit=no_forced_exit, transport=MemoryTransport(memory)
    )
    mux = Streammux(ctx)
    mux.start()
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            mux.step()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield mux
    stop.set()
    thread.join(5)
    # Its discovery thread waits up to 5 s for an event: stop it, then wake it with one.
    mux.discovery.stop()
    wake = StreamEvent(stream_id="wake")
    wake.error.fatal = False
    MemoryTransport(memory).bus(BusSettings(), CollectorRegistry()).publisher(
        streams.events(PIPELINE), StreamEvent
    ).publish(wake)
    mux.drain()
    mux.close()


def flowing(live: Live, stream_id: str, count: int = 5) -> None:
    wait(lambda: len(live.frames(stream_id)) >= count, f"{count} frames on {stream_id}")


# --- adding ---------------------------------------------------------------------------------


def test_add_assigns_the_next_ids_and_its_frames_flow(
    start_ingest: StartIngest, tmp_path: Path
) -> None:
    live = start_ingest(live_pipeline(tmp_path / "p.yaml"))
    answer = live.add(uri=LIVE)

    assert (answer.code, answer.message, answer.service) == (ReplyCode.OK, "", "ingest")
    assert answer.instance == live.service.instance
    spec = answer.source.source
    assert (spec.stream_id, spec.source_id, spec.uri) == ("source-1", 1, LIVE)
    assert spec.type == SourceType.SOURCE_TYPE_URI
    assert answer.source.state == SourceState.SOURCE_STATE_CONNECTING
    flowing(live, "source-1")
    assert {r.source_id for r in live.frames("source-1")} == {1}
    started = [e for e in live.events("source-1") if e.WhichOneof("event") == "started"]
    assert started and started[0].started.source == spec
    assert [w.stream_id for w in live.service.workers] == ["source-0", "source-1"]


def test_add_with_explicit_ids_plays_a_clip_to_its_end(
    start_ingest: StartIngest, tmp_path: Path, clip: Path
) -> None:
    live = start_ingest(live_pipeline(tmp_path / "p.yaml"))
    answer = live.add(uri=f"file://{clip}", stream_id="cam-7", source_id=7)

    assert answer.code == ReplyCode.OK, answer.message
    assert (answer.source.source.stream_id, answer.source.source.source_id) == ("cam-7", 7)
    wait(lambda: "eos" in live.event_kinds("cam-7"), "the clip to end")
    assert live.event_kinds("cam-7") == ["started", "eos"]
    assert live.events("cam-7")[-1].eos.frames == CLIP_FRAMES
    assert [r.frame_number for r in live.frames("cam-7")] == list(range(CLIP_FRAMES))
    # Ended, it may be added again under the same id.
    again = live.add(uri=f"file://{clip}", stream_id="cam-7", source_id=7)
    assert again.code == ReplyCode.OK, again.message
    wait(lambda: live.event_kinds("cam-7").count("eos") == 2, "the second pass to end")


def test_the_type_comes_from_the_uri(start_ingest: StartIngest, tmp_path: Path) -> None:
    live = start_ingest(live_pipeline(tmp_path / "p.yaml"), reconnect={"initial_s": 0.05})
    camera = live.add(uri="rtsp://127.0.0.1:9/none")
    given = live.add(uri=LIVE, type=SourceType.SOURCE_TYPE_MULTI_URI)

    assert camera.source.source.type == SourceType.SOURCE_TYPE_RTSP
    assert given.source.source.type == SourceType.SOURCE_TYPE_MULTI_URI  # given: kept


@pytest.mark.parametrize(
    ("spec", "code", "message"),
    [
        ({}, ReplyCode.INVALID_ARGUMENT, "source.uri: required"),
        (
            {"uri": "ftp://host/clip.mp4"},
            ReplyCode.INVALID_ARGUMENT,
            "source.uri: source URI 'ftp://host/clip.mp4': unsupported scheme 'ftp'",
        ),
        (
            {"uri": "file:///no/such/clip.mp4"},
            ReplyCode.INVALID_ARGUMENT,
            "source.uri: source URI 'file:///no/such/clip.mp4': file '/no/such/clip.mp4' does "
            "not exist",
        ),
        (
            {"uri": LIVE, "stream_id": "no spaces"},
            ReplyCode.INVALID_ARGUMENT,
            "source.stream_id: stream 'no spaces' is not a valid stream id",
        ),
        (
            {"uri": LIVE, "stream_id": "source-0"},
            ReplyCode.ALREADY_EXISTS,
            "source.stream_id: source-0 is already a source of this pipeline",
        ),
        (
            {"uri": LIVE, "stream_id": "cam-2", "source_id": 5},
            ReplyCode.ALREADY_EXISTS,
            "source.source_id: 5 is already used by a source of this pipeline",
        ),
    ],
)
def test_a_refused_add_names_the_field_and_changes_nothing(
    start_ingest: StartIngest,
    tmp_path: Path,
    spec: dict[str, Any],
    code: ReplyCode,
    message: str,
) -> None:
    live = start_ingest(live_pipeline(tmp_path / "p.yaml"))
    assert live.add(uri=LIVE, stream_id="cam-1", source_id=5).code == ReplyCode.OK
    changes = live.changes()

    answer = live.add(**spec)

    assert answer.code == code
    assert answer.message.startswith(message), answer.message
    assert not answer.HasField("source")
    assert [w.stream_id for w in live.service.workers] == ["source-0", "cam-1"]
    assert live.changes() == changes  # nothing new to re-apply


def test_streammux_batches_an_added_source_and_drains_a_removed_one(
    start_ingest: StartIngest, streammux: Streammux, tmp_path: Path
) -> None:
    live = start_ingest(live_pipeline(tmp_path / "p.yaml"))
    wait(lambda: streammux.sources.live == ["source-0"], "the muxer to read source-0")

    added = time.monotonic()
    assert live.add(uri=LIVE).code == ReplyCode.OK
    wait(lambda: "source-1" in streammux.sources.live, "the muxer to pick source-1 up", 3.0)
    assert time.monotonic() - added < 2.0  # its next SCAN is 5 s away: the event did it
    flowing(live, "source-1", 10)
    answer = live.remove("source-1")
    assert answer.code == ReplyCode.OK
    assert answer.source.frames >= 10

    # On its end of stream the muxer batches what was left of source-1, then drops it.
    wait(lambda: streammux.sources.live == ["source-0"], "the muxer to drop source-1")
    batches = live.messages(streams.batches(PIPELINE), FrameBatch)
    batched = [f.frame_number for b in batches for f in b.frames if f.stream_id == "source-1"]
    assert batched == list(range(answer.source.frames))


# --- removing -------------------------------------------------------------------------------


def test_removing_an_unknown_or_removed_source_is_not_found(
    start_ingest: StartIngest, tmp_path: Path
) -> None:
    live = start_ingest(live_pipeline(tmp_path / "p.yaml"))
    assert live.remove("source-0").code == ReplyCode.OK

    for stream_id in ("source-0", "nope"):
        answer = live.remove(stream_id)
        assert (answer.code, answer.message) == (
            ReplyCode.NOT_FOUND,
            f"stream_id: no source {stream_id} in pipeline {live.pipeline}",
        )


def test_removing_stops_that_stream_only_and_ends_it_with_its_frame_count(
    start_ingest: StartIngest, tmp_path: Path
) -> None:
    live = start_ingest(live_pipeline(tmp_path / "p.yaml", count=2))
    flowing(live, "source-0")
    flowing(live, "source-1")
    gone, kept = live.worker("source-1"), live.worker("source-0")

    started = time.monotonic()
    answer = live.remove("source-1")

    assert time.monotonic() - started < 2.0
    assert answer.code == ReplyCode.OK, answer.message
    assert (answer.source.state, answer.source.source.stream_id) == (REMOVED, "source-1")
    assert not gone.is_alive()
    published = len(live.frames("source-1"))
    assert answer.source.frames == gone.published == published
    assert live.event_kinds("source-1")[-1] == "eos"
    assert live.events("source-1")[-1].eos.frames == published
    assert [w.stream_id for w in live.service.workers] == ["source-0"]
    # The other stream never paused; the removed one publishes nothing more.
    before = len(live.frames("source-0"))
    flowing(live, "source-0", before + 10)
    assert kept.is_alive()
    assert len(live.frames("source-1")) == published
    assert "eos" not in live.event_kinds("source-0")


def test_frames_published_before_removal_stay_readable_until_the_group_has_them(
    start_ingest: StartIngest, tmp_path: Path
) -> None:
    live = start_ingest(live_pipeline(tmp_path / "p.yaml"), frame_location="shm", shm_slots=512)
    consumer = live.bus.consumer(streams.frames("source-0"), FrameRef, group="mux", name="m")
    consumer.ensure_group()
    flowing(live, "source-0", 10)
    store = live.worker("source-0").out.store
    assert isinstance(store, ShmPixelStore)

    answer = live.remove("source-0")  # answered at once, while nothing has been read
    assert answer.code == ReplyCode.OK

    time.sleep(0.3)
    assert store.ring is not None, "the ring went before its frames were read"
    reader = FrameReader()
    try:
        deliveries = consumer.read(count=10_000, block_ms=100)
        images = [reader.read(d.message) for d in deliveries]
    finally:
        reader.close()
    assert len(images) == answer.source.frames
    assert {image.shape for image in images} == {(120, 160, 3)}
    consumer.ack(deliveries)
    wait(lambda: store.ring is None, "the ring to be released once the group caught up")


def test_a_ring_nobody_reads_is_released_after_the_flush_timeout(
    start_ingest: StartIngest, tmp_path: Path
) -> None:
    live = start_ingest(
        live_pipeline(tmp_path / "p.yaml"), frame_location="shm", flush_timeout_s=0.3
    )
    flowing(live, "source-0")
    store = live.worker("source-0").out.store
    assert isinstance(store, ShmPixelStore)
    assert live.remove("source-0").code == ReplyCode.OK
    wait(lambda: store.ring is None, "the ring to be released", timeout_s=3.0)


def test_a_removed_id_is_not_reassigned_but_may_be_added_again(
    start_ingest: StartIngest, tmp_path: Path
) -> None:
    live = start_ingest(live_pipeline(tmp_path / "p.yaml", count=2))
    flowing(live, "source-1")
    assert live.remove("source-1").code == ReplyCode.OK

    assert live.add(uri=LIVE).source.source.stream_id == "source-2"
    again = live.add(uri=LIVE, stream_id="source-1")
    assert again.code == ReplyCode.OK, again.message
    wait(lambda: live.event_kinds("source-1")[-1] == "started", "source-1 to start again")
    report = live.report()
    assert report is not None
    assert REMOVED not in [s.state for s in report.sources if s.source.stream_id == "source-1"]


def test_removing_the_last_source_ends_a_run_that_exits_when_done(
    start_ingest: StartIngest, tmp_path: Path
) -> None:
    live = start_ingest(live_pipeline(tmp_path / "p.yaml"), exit_when_done=True)
    live.service.step()
    assert not live.service.ctx.stopping
    assert live.remove("source-0").code == ReplyCode.OK
    live.service.step()
    assert live.service.ctx.stopping


def test_commands_for_inference_get_no_reply_from_ingest(
    start_ingest: StartIngest, tmp_path: Path
) -> None:
    live = start_ingest(live_pipeline(tmp_path / "p.yaml"))
    command = Command(set_parameters=SetParametersRequest())
    assert live.sender.send(command, timeout_s=0.5) == []
    assert [w.stream_id for w in live.service.workers] == ["source-0"]


# --- restart and report ---------------------------------------------------------------------


def test_a_restarted_ingest_runs_the_sources_the_last_one_ran(
    start_ingest: StartIngest, tmp_path: Path
) -> None:
    config = live_pipeline(tmp_path / "p.yaml", count=2)
    first = start_ingest(config)
    added = first.add(uri=LIVE, stream_id="extra", source_id=9).source.source
    assert first.add(uri=LIVE, stream_id="brief").code == ReplyCode.OK
    assert first.remove("brief").code == ReplyCode.OK
    assert first.remove("source-1").code == ReplyCode.OK
    first.stop()

    changes = first.changes()
    assert changes is not None
    assert (list(changes.added), list(changes.removed)) == ([added], ["source-1"])
    second = start_ingest(config)
    assert [w.stream_id for w in second.service.workers] == ["source-0", "extra"]
    assert second.worker("extra").spec == added
    flowing(second, "extra", len(second.frames("extra")) + 5)


def test_the_report_shows_every_source_and_the_removed_ones(
    start_ingest: StartIngest, tmp_path: Path
) -> None:
    live = start_ingest(
        live_pipeline(tmp_path / "p.yaml", count=2),
        report_interval_s=0.1,
        reconnect={"initial_s": 0.05, "max_s": 0.1},
    )
    assert live.add(uri="rtsp://127.0.0.1:9/none", stream_id="cam").code == ReplyCode.OK

    def playing_report() -> bool:
        live.service.step()  # what run_service calls: publishes the report when due
        report = live.report()
        states = {s.source.stream_id: s for s in report.sources} if report else {}
        return states.get("source-0") is not None and states["source-0"].fps > 0

    wait(playing_report, "a report with source-0 playing")
    report = live.report()
    assert report is not None and report.instance == live.service.instance
    by_id = {s.source.stream_id: s for s in report.sources}
    assert list(by_id) == ["source-0", "source-1", "cam"]
    zero = by_id["source-0"]
    assert (zero.state, zero.last_error, zero.dropped, zero.reconnects) == (PLAYING, "", 0, 0)
    assert zero.frames > 0 and zero.source.uri == LIVE
    assert 0 < time.time() - zero.since.ToNanoseconds() / 1e9 < 10
    cam = by_id["cam"]
    assert cam.state in (SourceState.SOURCE_STATE_RECONNECTING, SourceState.SOURCE_STATE_CONNECTING)
    wait(lambda: live.worker("cam").reconnects > 0, "a reconnect")

    answer = live.remove("cam")
    after = live.report()  # published with the change, before the reply
    assert after is not None
    by_id = {s.source.stream_id: s for s in after.sources}
    assert list(by_id) == ["source-0", "source-1", "cam"]
    assert by_id["cam"] == answer.source
    assert (answer.source.state, answer.source.fps) == (REMOVED, 0.0)
    assert answer.source.reconnects > 0 and "127.0.0.1" in answer.source.last_error


# --- on Redis -------------------------------------------------------------------------------


def test_add_remove_and_restart_on_redis(start_redis_ingest: StartIngest, tmp_path: Path) -> None:
    config = live_pipeline(tmp_path / "p.yaml")
    live = start_redis_ingest(config)
    added = live.add(uri=LIVE)
    assert added.code == ReplyCode.OK, added.message
    flowing(live, "source-1")
    flowing(live, "source-0")
    removed = live.remove("source-0")
    assert removed.code == ReplyCode.OK, removed.message
    assert live.events("source-0")[-1].eos.frames == removed.source.frames > 0
    live.stop()

    again = start_redis_ingest(config)
    assert [w.stream_id for w in again.service.workers] == ["source-1"]
