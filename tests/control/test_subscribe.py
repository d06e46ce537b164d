"""Detections.Subscribe on a real Redis and a real gRPC port: resume with no gap and no
duplicate, exact Gaps after a trim or when too far behind, filters, malformed requests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import grpc
import pytest
import redis
from heron.v1.control_pb2 import SubscribeRequest

from tests.control.control_harness import (
    Control,
    Metadata,
    control,
    frame,
    frame_numbers,
    new_pipeline,
    refusal,
    subscription,
    take,
)


@pytest.fixture
def pipeline() -> str:
    return new_pipeline()


@pytest.fixture
def metadata(redis_url: str, pipeline: str) -> Iterator[Metadata]:
    published = Metadata(redis_url, pipeline)
    yield published
    published.close()


@pytest.fixture
def server(redis_url: str, pipeline: str) -> Iterator[Control]:
    with control(redis_url, pipeline) as running:
        yield running


def test_a_cut_subscriber_resumes_with_every_frame_once(
    server: Control, metadata: Metadata
) -> None:
    metadata.publish(range(10))
    with subscription(server.port, SubscribeRequest(from_oldest=True)) as events:
        first = take(events, 4)
    metadata.publish(range(10, 25))  # while nobody listens
    with subscription(server.port, SubscribeRequest(after=first[-1].position)) as events:
        rest = take(events, 21)
        metadata.publish(range(25, 30))  # and live again
        rest += take(events, 5)
    got = frame_numbers(first + rest)
    assert got == list(range(30))  # every frame, once, in order
    positions = [e.position for e in first + rest]
    assert len(set(positions)) == 30


def test_without_a_position_it_starts_from_now(server: Control, metadata: Metadata) -> None:
    metadata.publish(range(5))
    with subscription(server.port, SubscribeRequest()) as events:
        ticker = Ticker(metadata, start=100)  # new frames until the subscription sees one
        first = next(events)
        ticker.stop()
        assert frame_numbers([first])[0] >= 100  # none of the five before it


def test_a_trim_past_the_position_starts_with_an_exact_gap(
    server: Control, metadata: Metadata, redis_url: str
) -> None:
    metadata.publish(range(10))
    with subscription(server.port, SubscribeRequest(from_oldest=True)) as events:
        seen = take(events, 3)  # frames 0, 1, 2
    redis.Redis.from_url(redis_url).xtrim(
        metadata.stream.key, maxlen=4, approximate=False
    )  # frames 6..9 stay
    with subscription(server.port, SubscribeRequest(after=seen[-1].position)) as events:
        gap, *frames = take(events, 5)
    assert gap.WhichOneof("event") == "gap"
    assert gap.gap.after == seen[-1].position and gap.gap.missed == 3
    assert gap.gap.resumed_at == frames[0].position
    assert frame_numbers(frames) == [6, 7, 8, 9]
    assert server.metric("heron_control_missed_frames_total", reason="trimmed") == 3
    # The gap's own position resumes right after the loss: no second gap, nothing twice.
    with subscription(server.port, SubscribeRequest(after=gap.position)) as events:
        assert frame_numbers(take(events, 4)) == [6, 7, 8, 9]


def test_a_subscriber_too_far_behind_skips_to_the_newest_with_a_gap(
    redis_url: str, pipeline: str, metadata: Metadata
) -> None:
    fields = {"subscribe": {"max_behind": 20, "read_count": 5}}
    with control(redis_url, pipeline, **fields) as server:
        metadata.publish(range(3))
        with subscription(server.port, SubscribeRequest(from_oldest=True)) as events:
            got = take(events, 1)
            metadata.publish(range(3, 200))  # the client reads nothing meanwhile
            # Frames keep coming (20/s) until the subscriber is past the skip, then one last.
            published = Ticker(metadata, start=200)
            while not any(n >= 200 for n in frame_numbers(got[-1:])):
                got.append(next(events))
            last = published.stop()
            metadata.publish(range(last + 1, last + 2))
            while frame_numbers(got[-1:]) != [last + 1]:
                got.append(next(events))
        gaps = [e.gap for e in got if e.WhichOneof("event") == "gap"]
        numbers = frame_numbers(got)
        assert gaps and len(numbers) == len(set(numbers)) and numbers == sorted(numbers)
        assert len(numbers) + sum(g.missed for g in gaps) == last + 2  # sent, or counted
        missed = server.metric("heron_control_missed_frames_total", reason="behind")
        assert missed == sum(g.missed for g in gaps)


class Ticker:
    """Publishes the next frame number every 50 ms in a thread until stopped."""

    def __init__(self, metadata: Metadata, start: int) -> None:
        self._metadata = metadata
        self._next = start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self._metadata.publish(range(self._next, self._next + 1))
            self._next += 1

    def stop(self) -> int:
        """The last frame number published."""
        self._stop.set()
        self._thread.join()
        return self._next - 1


def test_filters_keep_every_frame_of_the_streams_asked_for(
    server: Control, metadata: Metadata
) -> None:
    objects = [("Mask", 0.9), ("No_Mask", 0.8), ("Mask", 0.2)]
    for n in range(3):
        metadata.publisher.publish_many(
            [
                frame("cam-0", n, objects),
                frame("cam-1", n, objects if n != 1 else [("No_Mask", 0.9)]),
            ]
        )
    request = SubscribeRequest(
        stream_ids=["cam-1"], classes=["Mask"], min_confidence=0.5, from_oldest=True
    )
    with subscription(server.port, request) as events:
        got = take(events, 3)
    assert [e.frame.frame.stream_id for e in got] == ["cam-1"] * 3
    assert frame_numbers(got) == [0, 1, 2]
    kept = [[(o.label, round(o.confidence, 2)) for o in e.frame.objects] for e in got]
    assert kept == [[("Mask", 0.9)], [], [("Mask", 0.9)]]  # frame 1 has nothing left: still sent


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"after": "not-a-position"}, "after: expected a position"),
        ({"after": "1733590000000-0"}, "after: expected a position"),
        ({"after": "12-x:4"}, "after: expected a position"),
        ({"min_confidence": -0.5}, "min_confidence: expected 0 to 1, got -0.5"),
        ({"min_confidence": 1.5}, "min_confidence: expected 0 to 1, got 1.5"),
        ({"min_confidence": float("nan")}, "min_confidence: expected 0 to 1, got nan"),
        ({"stream_ids": ["cam-0", "bad id!"]}, "stream_ids[1]: "),
        ({"classes": ["Mask", " "]}, "classes[1]: expected a class label"),
        ({"after": "5-0:5", "from_oldest": True}, "from_oldest: give either"),
    ],
)
def test_malformed_requests_are_invalid_argument_naming_the_field(
    server: Control, request_fields: dict[str, object], field: str
) -> None:
    error = refusal(server.port, SubscribeRequest(**request_fields))  # type: ignore[arg-type]
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (error.details() or "")


def test_a_deadline_ends_an_idle_subscription_in_time(server: Control) -> None:
    started = time.monotonic()
    error = refusal(server.port, SubscribeRequest(), timeout=1.0)
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 3.0


def test_subscriptions_past_the_limit_are_refused(
    redis_url: str, pipeline: str, metadata: Metadata
) -> None:
    with control(redis_url, pipeline, subscribe={"max_subscribers": 1}) as server:
        metadata.publish(range(1))
        with subscription(server.port, SubscribeRequest(from_oldest=True)) as first:
            take(first, 1)
            error = refusal(server.port, SubscribeRequest())
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        time.sleep(0.2)  # the cancel reaches the server, which gives the slot back
        with subscription(server.port, SubscribeRequest(from_oldest=True)) as third:
            assert frame_numbers(take(third, 1)) == [0]


def test_stopping_the_service_ends_subscriptions_with_unavailable(
    redis_url: str, pipeline: str, metadata: Metadata
) -> None:
    server = Control(redis_url, pipeline)
    try:
        metadata.publish(range(2))
        with subscription(server.port, SubscribeRequest(from_oldest=True)) as events:
            position = take(events, 2)[-1].position
            server.ctx.stop("test")
            with pytest.raises(grpc.RpcError) as e:
                next(events)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "after" in (e.value.details() or "") and position
    finally:
        server.stop()


@pytest.mark.parametrize("fanout_entries", [4096, 0])
def test_a_subscriber_behind_at_a_stop_still_gets_what_the_stream_held(
    redis_url: str, pipeline: str, metadata: Metadata, fanout_entries: int
) -> None:
    """`heron run` stops the control service right after the last frame left the last stage:
    a subscriber not there yet must still receive it before its call ends."""
    server = Control(redis_url, pipeline, subscribe={"fanout_entries": fanout_entries})
    try:
        metadata.publish(range(300))
        with subscription(server.port, SubscribeRequest(from_oldest=True)) as events:
            first = take(events, 1)
            server.ctx.stop("test")
            rest = []
            with pytest.raises(grpc.RpcError) as e:
                while True:
                    rest.append(next(events))
        assert frame_numbers(first + rest) == list(range(300))
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop()
