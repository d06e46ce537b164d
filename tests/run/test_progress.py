"""What the run learns from the bus: frames out of the last stage, EOS, sinks drained."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from heron.core import streams
from heron.core.bus import RedisBus
from heron.run.progress import BusWatcher, StreamProgress
from heron.run.runner import unread_sources
from heron.v1.detection_pb2 import FrameMetadata
from heron.v1.frame_pb2 import FrameRef
from heron.v1.stream_pb2 import StreamEvent
from prometheus_client import CollectorRegistry


@pytest.fixture
def pipeline() -> str:
    return f"progress-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def bus(redis_url: str) -> Iterator[RedisBus]:
    with RedisBus.from_url(redis_url, registry=CollectorRegistry()) as b:
        yield b


@pytest.fixture
def watcher(redis_url: str, pipeline: str) -> Iterator[BusWatcher]:
    w = BusWatcher.on_redis(redis_url, pipeline, "tracker", ["source-0", "source-1"])
    yield w
    w.close()


def frame(stream: str, number: int, captured_ns: int = 0) -> FrameMetadata:
    ts = Timestamp()
    ts.FromNanoseconds(captured_ns)
    return FrameMetadata(frame=FrameRef(stream_id=stream, frame_number=number, capture_time=ts))


def eos(stream: str, frames: int) -> StreamEvent:
    return StreamEvent(stream_id=stream, eos=StreamEvent.EndOfStream(frames=frames))


def test_done_only_when_every_stream_ended_and_its_frames_are_out(
    bus: RedisBus, watcher: BusWatcher, pipeline: str
) -> None:
    meta = bus.publisher(streams.metadata("tracker", pipeline), FrameMetadata)
    events = bus.publisher(streams.events(pipeline), StreamEvent)
    meta.publish_many([frame("source-0", n) for n in range(3)] + [frame("source-1", 0)])
    seen = watcher.poll(block_ms=100)
    assert sorted((f.stream, f.frame_number) for f in seen) == [
        ("source-0", 0),
        ("source-0", 1),
        ("source-0", 2),
        ("source-1", 0),
    ]
    events.publish(eos("source-0", 3))
    watcher.poll(block_ms=0)
    assert watcher.progress["source-0"].complete and not watcher.sources_ended
    events.publish(eos("source-1", 2))
    watcher.poll(block_ms=0)
    assert watcher.sources_ended and not watcher.last_stage_done  # source-1 frame 1 is missing
    meta.publish_many([frame("source-1", 1), frame("source-1", 1)])  # at least once: a repeat
    watcher.poll(block_ms=100)
    assert watcher.last_stage_done
    assert watcher.progress["source-1"].frames_out == {0, 1}


def test_a_fatal_error_ends_a_stream_and_a_restart_reopens_it(
    bus: RedisBus, watcher: BusWatcher, pipeline: str
) -> None:
    events = bus.publisher(streams.events(pipeline), StreamEvent)
    events.publish(
        StreamEvent(stream_id="source-0", error=StreamEvent.Error(message="gone", fatal=True))
    )
    events.publish(StreamEvent(stream_id="source-1", error=StreamEvent.Error(message="blip")))
    watcher.poll(block_ms=0)
    assert watcher.progress["source-0"].ended and watcher.progress["source-0"].error == "gone"
    assert not watcher.progress["source-1"].ended  # not fatal: it reconnects
    events.publish(StreamEvent(stream_id="source-0", started=StreamEvent.Started()))
    watcher.poll(block_ms=0)
    assert not watcher.progress["source-0"].ended


def test_latency_is_capture_to_publish(bus: RedisBus, watcher: BusWatcher, pipeline: str) -> None:
    import time

    captured = time.time_ns() - 250_000_000
    bus.publisher(streams.metadata("tracker", pipeline), FrameMetadata).publish(
        frame("source-0", 0, captured)
    )
    (seen,) = watcher.poll(block_ms=100)
    assert seen.latency_s is not None and 0.25 <= seen.latency_s < 5


def test_sinks_drained_needs_the_overlay_group_caught_up(
    bus: RedisBus, watcher: BusWatcher, pipeline: str
) -> None:
    stream = streams.metadata("tracker", pipeline)
    meta = bus.publisher(stream, FrameMetadata)
    assert not watcher.downstream_drained(expected_groups=1)  # no overlay group yet
    assert watcher.downstream_drained(expected_groups=0)
    overlay = bus.consumer(stream, FrameMetadata, group="overlay", name="overlay-0")
    overlay.ensure_group()
    meta.publish(frame("source-0", 0))
    assert not watcher.downstream_drained(expected_groups=1)  # unread
    got = overlay.read(block_ms=100)
    assert not watcher.downstream_drained(expected_groups=1)  # read, not acknowledged
    overlay.ack(got)
    assert watcher.downstream_drained(expected_groups=1)


@pytest.mark.parametrize(
    ("progress", "complete"),
    [
        (StreamProgress(), False),
        (StreamProgress(ended=True, frames_in=2, frames_out={0}), False),
        (StreamProgress(ended=True, frames_in=2, frames_out={0, 1}), True),
        (StreamProgress(ended=True, error="gone"), True),  # no count to wait for
        # A stray number past the source's count must not stand in for a missing frame.
        (StreamProgress(ended=True, frames_in=2, frames_out={0, 999999}), False),
    ],
)
def test_stream_completion(progress: StreamProgress, complete: bool) -> None:
    assert progress.complete is complete


@pytest.mark.parametrize(
    ("progress", "delivered", "lost"),
    [
        (StreamProgress(frames_out={0, 1}), 2, 0),  # still running: nothing lost yet
        (StreamProgress(ended=True, frames_in=3, frames_out={0, 2}), 2, 1),
        (StreamProgress(ended=True, frames_in=3, frames_out={0, 1, 2, 999999}), 3, 0),
        (StreamProgress(ended=True, frames_in=2, frames_out={999999}), 0, 2),
    ],
)
def test_delivered_and_lost_count_only_the_sources_frames(
    progress: StreamProgress, delivered: int, lost: int
) -> None:
    assert (progress.delivered, progress.lost) == (delivered, lost)


def test_a_stream_the_pipeline_does_not_have_is_not_counted_and_holds_nothing_open(
    bus: RedisBus, watcher: BusWatcher, pipeline: str
) -> None:
    meta = bus.publisher(streams.metadata("tracker", pipeline), FrameMetadata)
    events = bus.publisher(streams.events(pipeline), StreamEvent)
    meta.publish_many([frame("source-0", 0), frame("cam-9", 0), frame("source-1", 0)])
    seen = watcher.poll(block_ms=100)
    assert sorted(f.stream for f in seen) == ["source-0", "source-1"]
    assert set(watcher.progress) == {"source-0", "source-1"} and watcher.strays == {"cam-9"}
    events.publish_many([eos("source-0", 1), eos("source-1", 1)])
    watcher.poll(block_ms=0)
    assert watcher.last_stage_done


def test_a_source_added_at_run_time_is_counted_and_holds_the_run_until_it_ends(
    bus: RedisBus, watcher: BusWatcher, pipeline: str
) -> None:
    meta = bus.publisher(streams.metadata("tracker", pipeline), FrameMetadata)
    events = bus.publisher(streams.events(pipeline), StreamEvent)
    events.publish(StreamEvent(stream_id="cam-9", started=StreamEvent.Started()))
    meta.publish_many([frame("source-0", 0), frame("cam-9", 0), frame("source-1", 0)])
    seen = watcher.poll(block_ms=100)
    assert sorted(f.stream for f in seen) == ["cam-9", "source-0", "source-1"]
    assert watcher.strays == set()
    events.publish_many([eos("source-0", 1), eos("source-1", 1)])
    watcher.poll(block_ms=0)
    assert not watcher.last_stage_done  # cam-9 has not ended
    events.publish(eos("cam-9", 1))
    watcher.poll(block_ms=0)
    assert watcher.last_stage_done


def test_an_unknown_lag_is_not_taken_for_caught_up(
    bus: RedisBus, watcher: BusWatcher, pipeline: str
) -> None:
    """XINFO's lag is nil after a deleted entry (and after a Redis restarted from its
    append-only file): the overlay's unread entries must still hold the run open."""
    stream = streams.metadata("tracker", pipeline)
    overlay = bus.consumer(stream, FrameMetadata, group="overlay", name="overlay-0")
    overlay.ensure_group()
    ids = bus.publisher(stream, FrameMetadata).publish_many(
        [frame("source-0", n) for n in range(3)]
    )
    overlay.ack(overlay.read(count=1, block_ms=100))
    bus.client.xdel(stream.key, ids[1])
    (group,) = [g for g in bus.client.xinfo_groups(stream.key) if g["name"] == b"overlay"]
    assert group["lag"] is None and group["pending"] == 0  # XINFO alone would say caught up
    assert not watcher.downstream_drained(expected_groups=1)
    overlay.ack(overlay.read(count=5, block_ms=100))
    assert watcher.downstream_drained(expected_groups=1)


def test_a_frame_the_overlay_dropped_is_lost_though_the_last_stage_sent_it(
    bus: RedisBus, watcher: BusWatcher, pipeline: str
) -> None:
    meta = bus.publisher(streams.metadata("tracker", pipeline), FrameMetadata)
    events = bus.publisher(streams.events(pipeline), StreamEvent)
    meta.publish_many([frame("source-0", n) for n in range(3)] + [frame("source-1", 0)])
    dropped = StreamEvent.FrameDropped(stage="overlay", frame_number=1, reason="overwritten")
    events.publish_many(
        [
            StreamEvent(stream_id="source-0", dropped=dropped),
            eos("source-0", 3),
            eos("source-1", 1),
        ]
    )
    watcher.poll(block_ms=100)
    progress = watcher.progress["source-0"]
    assert progress.dropped == {1: "overwritten"}
    assert (progress.delivered, progress.lost) == (2, 1)
    assert watcher.sources_ended and not watcher.last_stage_done


def test_a_dropped_frame_sent_again_and_not_dropped_again_is_delivered(
    bus: RedisBus, watcher: BusWatcher, pipeline: str
) -> None:
    """A frame whose pixels died with a killed ingest may be dropped by the overlay, then
    published again by the restarted ingest and drawn: two chances, one lost."""
    meta = bus.publisher(streams.metadata("tracker", pipeline), FrameMetadata)
    events = bus.publisher(streams.events(pipeline), StreamEvent)
    dropped = StreamEvent.FrameDropped(stage="overlay", frame_number=1, reason="bad_frame")
    meta.publish_many([frame("source-0", n) for n in range(3)])
    events.publish_many(
        [StreamEvent(stream_id="source-0", dropped=dropped), eos("source-0", 3), eos("source-1", 0)]
    )
    watcher.poll(block_ms=100)
    assert watcher.progress["source-0"].lost == 1
    meta.publish(frame("source-0", 1))  # the copy
    watcher.poll(block_ms=100)
    assert (watcher.progress["source-0"].lost, watcher.last_stage_done) == (0, True)
    events.publish(StreamEvent(stream_id="source-0", dropped=dropped))  # the copy lost too
    watcher.poll(block_ms=100)
    assert watcher.progress["source-0"].lost == 1


def test_objects_are_counted_once_per_frame_with_their_tracks(
    bus: RedisBus, watcher: BusWatcher, pipeline: str
) -> None:
    from heron.v1.detection_pb2 import DetectedObject

    def found(number: int, *objects: tuple[str, int]) -> FrameMetadata:
        meta = frame("source-0", number)
        meta.objects.extend(DetectedObject(label=label, tracker_id=t) for label, t in objects)
        return meta

    meta = bus.publisher(streams.metadata("tracker", pipeline), FrameMetadata)
    repeat = found(1, ("Mask", 7))
    meta.publish_many([found(0, ("Mask", 7), ("No-Mask", 0)), repeat, repeat, found(2)])
    watcher.poll(block_ms=100)
    p = watcher.progress["source-0"]
    assert dict(p.objects) == {"Mask": 2, "No-Mask": 1}  # the redelivered frame once
    assert p.frames_with_objects == 2 and p.track_ids == {7}  # id 0: not tracked


def reconnecting(stream: str, attempt: int, reason: str) -> StreamEvent:
    return StreamEvent(
        stream_id=stream,
        reconnecting=StreamEvent.Reconnecting(attempt=attempt, backoff_seconds=1.0, reason=reason),
    )


def test_a_source_that_cannot_be_read_is_said_now_and_then_with_its_reason(
    bus: RedisBus, watcher: BusWatcher, pipeline: str, caplog: pytest.LogCaptureFixture
) -> None:
    events = bus.publisher(streams.events(pipeline), StreamEvent)
    refused, gone = "Connection refused: rtsp://cam", "no route to host"
    events.publish_many([reconnecting("source-0", n, refused) for n in range(1, 7)])
    events.publish(reconnecting("source-0", 7, gone))
    with caplog.at_level(logging.WARNING, logger="heron.run.progress"):
        watcher.poll(block_ms=0)
    said = [r.getMessage() for r in caplog.records]
    assert said == [
        f"source-0: cannot read the source (attempt {n}, next in 1.0 s): {reason}"
        for n, reason in ((1, refused), (2, refused), (4, refused), (7, gone))
    ]  # attempts 1, 2, 4, ... and whenever the reason changes
    p = watcher.progress["source-0"]
    assert (p.unreadable, p.attempts) == (gone, 7)
    assert "source-0 could not be read (7 attempt(s)): no route to host" in unread_sources(watcher)
    caplog.clear()
    events.publish(StreamEvent(stream_id="source-0", started=StreamEvent.Started()))
    with caplog.at_level(logging.WARNING, logger="heron.run.progress"):
        watcher.poll(block_ms=0)
    assert [r.getMessage() for r in caplog.records] == ["source-0: playing after 7 attempt(s)"]
    assert (p.unreadable, p.attempts) == (None, 0) and unread_sources(watcher) == ""
