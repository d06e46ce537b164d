"""A Detections subscriber much slower than the pipeline, over real gRPC and a real Redis, with
the shared reader (heron.control.fanout) on: the server holds a bounded amount for it (the
ring's `fanout_entries`, one read, gRPC's window), its process does not grow with what was
published, and what it lost is exactly what heron_control_missed_frames_total counts."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest
from heron.v1.control_pb2 import SubscribeRequest
from heron.v1.detection_pb2 import DetectedObject, FrameMetadata
from heron.v1.frame_pb2 import FrameRef

from tests.control.control_harness import Metadata, control, new_pipeline, subscription

PRODUCED = 6000
BATCH = 100
OBJECTS = 80  # ~5 KB a frame: PRODUCED of them are ~30 MB, far above what may be held
RING = 64
MAX_BEHIND = 300
RSS_GROWTH_BOUND = 24 * 2**20


def rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def heavy(number: int) -> FrameMetadata:
    objects = [
        DetectedObject(label=f"person-{i:03d}-" + "x" * 40, confidence=0.5) for i in range(OBJECTS)
    ]
    return FrameMetadata(frame=FrameRef(stream_id="cam-0", frame_number=number), objects=objects)


@pytest.fixture
def metadata(redis_url: str) -> Iterator[tuple[str, Metadata]]:
    pipeline = new_pipeline()
    published = Metadata(redis_url, pipeline)
    yield pipeline, published
    published.close()


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="RSS is read from /proc")
def test_a_slow_subscriber_holds_bounded_memory_and_every_lost_frame_is_counted(
    redis_url: str, metadata: tuple[str, Metadata]
) -> None:
    pipeline, published = metadata
    fields = {"subscribe": {"fanout_entries": RING, "max_behind": MAX_BEHIND, "read_count": 16}}
    with control(redis_url, pipeline, **fields) as server:
        published.publisher.publish(heavy(0))
        with subscription(server.port, SubscribeRequest(from_oldest=True)) as events:
            numbers: list[int] = []
            missed = 0
            first = next(events)
            numbers.append(first.frame.frame.frame_number)
            before = rss_bytes()

            def produce() -> None:
                for start in range(1, PRODUCED, BATCH):
                    batch = range(start, min(start + BATCH, PRODUCED))
                    published.publisher.publish_many([heavy(n) for n in batch])

            shared = server.service.detections.shared
            assert shared is not None
            producer = threading.Thread(target=produce, daemon=True)
            producer.start()
            ring_sizes: list[int] = []
            for event in events:  # slowly: 2 ms an event, far below the producer's rate
                if event.WhichOneof("event") == "gap":
                    missed += event.gap.missed
                    continue
                numbers.append(event.frame.frame.frame_number)
                ring_sizes.append(shared.held)
                if numbers[-1] == PRODUCED - 1:
                    break
                time.sleep(0.002)
            producer.join()
            grown = rss_bytes() - before

        counted = sum(
            server.metric("heron_control_missed_frames_total", reason=reason)
            for reason in ("trimmed", "behind")
        )

    assert numbers == sorted(set(numbers))  # in order, none twice
    assert missed > 0  # it really was too slow: frames were skipped
    assert len(numbers) + missed == PRODUCED  # each frame was sent, or counted in a Gap
    assert counted == missed == PRODUCED - len(numbers)  # and the metric says the same
    assert max(ring_sizes) <= RING
    assert grown < RSS_GROWTH_BOUND, f"the process grew by {grown / 2**20:.1f} MiB"
