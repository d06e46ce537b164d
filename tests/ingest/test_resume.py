"""A restarted ingest resumes a file source at the oldest frame the pipeline still needs
(heron.ingest.resume): unit cases on both transports, then the service on a real clip."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from heron.core import streams
from heron.core.bus import Bus, MemoryBus, MemoryStreams, RedisBus
from heron.core.framestore import FrameReader
from heron.ingest.resume import Resume, resume_points
from heron.v1.detection_pb2 import FrameMetadata
from heron.v1.frame_pb2 import FrameRef, SharedMemorySlot
from prometheus_client import CollectorRegistry

from tests.ingest.clips import read_number
from tests.ingest.conftest import CLIP_FRAMES, Ingest, write_pipeline

PIPELINE = "p1"


def captured(n: int) -> Timestamp:
    return Timestamp(seconds=1_700_000_000 + n, nanos=n)


def ref(n: int, stream_id: str = "cam") -> FrameRef:
    return FrameRef(stream_id=stream_id, frame_number=n, capture_time=captured(n))


def meta(n: int, stream_id: str = "cam") -> FrameMetadata:
    return FrameMetadata(frame=ref(n, stream_id))


@pytest.fixture(params=["redis", "memory"])
def bus(request: pytest.FixtureRequest) -> Iterator[Bus]:
    made: Bus
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        made = RedisBus.from_url(url, registry=CollectorRegistry())
    else:
        made = MemoryBus(MemoryStreams(), registry=CollectorRegistry())
    yield made
    made.close()


def publish_frames(bus: Bus, numbers: range, stream_id: str = "cam") -> None:
    bus.publisher(streams.frames(stream_id), FrameRef).publish_many(
        [ref(n, stream_id) for n in numbers]
    )


def consume(bus: Bus, stream: streams.StreamName, group: str, *, read: int, ack: int) -> None:
    """`group` takes the first `read` entries of `stream` and acknowledges the first `ack`."""
    message_class = FrameRef if stream.message_type == "heron.v1.FrameRef" else FrameMetadata
    consumer = bus.consumer(stream, message_class, group, f"{group}-0")
    consumer.ensure_group()
    taken = consumer.read(count=read, block_ms=0) if read else []
    consumer.ack(taken[:ack])


def test_a_stream_nothing_was_published_on_starts_at_its_first_frame(bus: Bus) -> None:
    assert resume_points(bus, PIPELINE, ["cam"]) == {"cam": Resume()}


def test_frames_pending_or_unread_on_the_frame_stream_are_published_again(bus: Bus) -> None:
    publish_frames(bus, range(10))
    # Before the group exists nobody has read a frame: all of them are needed.
    assert resume_points(bus, PIPELINE, ["cam"])["cam"].next_frame == 0
    consume(bus, streams.frames("cam"), "inference", read=6, ack=4)  # 4, 5 pending; 6-9 unread

    resume = resume_points(bus, PIPELINE, ["cam"])["cam"]
    assert (resume.next_frame, resume.published) == (4, 10)
    assert resume.captured == {n: captured(n) for n in range(4, 10)}  # the same frames


@pytest.mark.parametrize(
    "case",
    [
        ("tracker", "overlay", 3, 1, 1),  # the overlay draws last: frame 1 is its oldest
        ("tracker", "overlay", 0, 0, 0),  # a group given nothing yet owes every entry
        ("inference", "tracker", 5, 5, 5),  # frames 5-7 still wait for the tracker
    ],
)
def test_a_later_reader_holds_the_resume_point_back(
    bus: Bus, case: tuple[str, str, int, int, int]
) -> None:
    stage, group, read, ack, first = case
    publish_frames(bus, range(12))
    consume(bus, streams.frames("cam"), "inference", read=12, ack=12)  # all inferred
    metadata = streams.metadata(stage, PIPELINE)
    bus.publisher(metadata, FrameMetadata).publish_many([meta(n) for n in range(8)])
    consume(bus, metadata, group, read=read, ack=ack)

    resume = resume_points(bus, PIPELINE, ["cam"])["cam"]
    assert (resume.next_frame, resume.published) == (first, 12)
    # Finished or not, every frame published again keeps its time: 8-11 are on the frame stream.
    assert resume.captured == {n: captured(n) for n in range(first, 12)}


def test_a_predecessor_killed_while_publishing_again_does_not_lower_the_count(bus: Bus) -> None:
    publish_frames(bus, range(10))
    publish_frames(bus, range(3))  # the copies of 0-2 it got out before it died
    consume(bus, streams.frames("cam"), "inference", read=13, ack=13)
    assert resume_points(bus, PIPELINE, ["cam"]) == {"cam": Resume(next_frame=10, published=10)}


def test_a_finished_stream_goes_on_after_its_newest_frame(bus: Bus) -> None:
    publish_frames(bus, range(5))
    consume(bus, streams.frames("cam"), "inference", read=5, ack=5)
    assert resume_points(bus, PIPELINE, ["cam"]) == {"cam": Resume(next_frame=5, published=5)}


def test_other_streams_and_other_pipelines_do_not_count(bus: Bus) -> None:
    publish_frames(bus, range(6))
    publish_frames(bus, range(6), stream_id="other")
    consume(bus, streams.frames("cam"), "inference", read=6, ack=6)
    mine = streams.metadata("tracker", PIPELINE)
    theirs = streams.metadata("tracker", "another")
    bus.publisher(mine, FrameMetadata).publish_many([meta(n, "other") for n in range(6)])
    bus.publisher(theirs, FrameMetadata).publish_many([meta(n) for n in range(6)])
    consume(bus, mine, "overlay", read=0, ack=0)
    consume(bus, theirs, "overlay", read=0, ack=0)

    points = resume_points(bus, PIPELINE, ["cam", "other"])
    assert points["cam"].next_frame == 6  # only another pipeline's overlay owes cam's frames
    assert points["other"].next_frame == 0  # no group on its frame stream yet


# --- the service on a clip --------------------------------------------------------------------


@pytest.mark.parametrize("case", [(1, 20, 12), (5, 6, 3)])
def test_a_restarted_ingest_publishes_again_from_the_oldest_unfinished_frame(
    run_ingest: Callable[..., Ingest],
    redis_url: str,
    clip: Path,
    tmp_path: Path,
    case: tuple[int, int, int],
) -> None:
    """A killed predecessor published frames 0..before-1 (pixels gone with it), keeping one
    frame in `interval`; the inference group finished the first `acked`. The successor
    publishes from there, under the same numbers and capture times, with the pixels of the
    frames those numbers name, and ends the stream with the whole count."""
    interval, before, acked = case
    with RedisBus.from_url(redis_url, registry=CollectorRegistry()) as bus:
        publish_frames(bus, range(before), stream_id="source-0")
        consume(bus, streams.frames("source-0"), "inference", read=before, ack=acked)
    source = {"type": "uri", "uri": f"file://{clip}", "drop_frame_interval": interval}
    ingest = run_ingest(
        write_pipeline(tmp_path / "p.yaml", {0: source}),
        frame_location="jpeg",
        frame_stream_max_len=100,
    )
    ingest.wait_finished()

    kept = len(range(0, CLIP_FRAMES, interval))
    refs = ingest.frames("source-0")[before:]  # what the successor published
    assert [r.frame_number for r in refs] == list(range(acked, kept))
    reader = FrameReader()
    try:
        assert [read_number(reader.read(r)) for r in refs] == [
            n * interval for n in range(acked, kept)
        ]
    finally:
        reader.close()
    again = {r.frame_number: r.capture_time for r in refs if r.frame_number < before}
    assert again == {n: captured(n) for n in range(acked, before)}
    assert all(r.capture_time != captured(r.frame_number) for r in refs[before - acked :])
    assert ingest.events()[-1].eos.frames == kept


def test_the_stale_frames_the_overlay_holds_do_not_stop_the_copies(
    run_ingest: Callable[..., Ingest], redis_url: str, clip: Path, tmp_path: Path
) -> None:
    """More frames of the killed ingest wait at the overlay (pending, their ring gone) than the
    downstream gate allows in flight: they are not in the new ingest's ring, so the copies go
    out at once instead of after the overlay gave up on the stale ones."""
    stale = 12
    with RedisBus.from_url(redis_url, registry=CollectorRegistry()) as bus:
        dead = SharedMemorySlot(segment="heron-source-0-1-dead00")
        olds = [FrameRef(stream_id="source-0", frame_number=n, capture_time=captured(n), shm=dead)
                for n in range(stale)]  # fmt: skip
        bus.publisher(streams.frames("source-0"), FrameRef).publish_many(olds)
        consume(bus, streams.frames("source-0"), "inference", read=stale, ack=stale)
        tracker = streams.metadata("tracker")
        bus.publisher(tracker, FrameMetadata).publish_many([FrameMetadata(frame=r) for r in olds])
        consume(bus, tracker, "overlay", read=stale, ack=0)  # waiting for their copies
    source = {"type": "uri", "uri": f"file://{clip}"}
    ingest = run_ingest(
        write_pipeline(tmp_path / "p.yaml", {0: source}),
        backpressure="every_frame",
        consumer_group="inference",
        max_lag=8,
        frame_stream_max_len=100,
        shm_slots=16,
        downstream={"stage": "tracker", "group": "overlay", "max_lag": 4},
    )

    def copies() -> list[FrameRef]:
        return ingest.frames("source-0")[stale:]

    ingest.wait(lambda: len(copies()) >= 4, timeout=10, what="4 copies")
    time.sleep(0.3)  # nothing finishes downstream: no fifth
    assert [r.frame_number for r in copies()] == [0, 1, 2, 3]
    assert [r.capture_time for r in copies()] == [captured(n) for n in range(4)]
