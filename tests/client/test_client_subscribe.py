"""Client.subscribe over a real gRPC server: it resumes by itself after the server drops the
connection (nothing twice, nothing missed), hands a Gap to the caller as an event, and says
clearly when the server is absent."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from heron.client import Client, ClientSettings, ServerUnavailableError, Subscription
from heron.v1 import control_pb2

from tests.client.client_fakes import Fakes, position, serving, start
from tests.support.redis_server import free_port


def _take(subscription: Subscription, count: int) -> list[control_pb2.DetectionEvent]:
    return [next(subscription) for _ in range(count)]


def _numbers(events: list[control_pb2.DetectionEvent]) -> list[int]:
    return [e.frame.frame.frame_number for e in events if e.HasField("frame")]


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


@pytest.fixture
def client_and_fakes(fakes: Fakes) -> Iterator[tuple[Client, Fakes]]:
    with serving(fakes) as server, Client(f"127.0.0.1:{server.port}") as client:
        yield client, fakes


def test_subscribe_resumes_after_the_server_drops_the_stream(fakes: Fakes) -> None:
    server = start(fakes)
    port = server.port
    reconnects: list[str] = []
    with Client(f"127.0.0.1:{port}") as client:
        subscription = client.subscribe(
            from_oldest=True, on_reconnect=lambda why, _delay: reconnects.append(why)
        )
        fakes.detections.publish(5)
        events = _take(subscription, 5)
        server.stop()  # mid-stream: the connection drops
        fakes.detections.publish(5)  # the pipeline goes on while the client is cut off
        server = start(fakes, port=port)
        try:
            events += _take(subscription, 5)
        finally:
            subscription.cancel()
            server.stop()
    assert _numbers(events) == list(range(1, 11))  # nothing twice, nothing missed
    assert subscription.position == position(10)
    assert subscription.reconnects >= 1
    assert reconnects
    first, *later = fakes.detections.requests
    assert first.from_oldest
    assert first.after == ""
    assert later[-1].after == position(5)
    assert not later[-1].from_oldest


def test_a_gap_reaches_the_caller_as_an_event(fakes: Fakes) -> None:
    server = start(fakes)
    port = server.port
    with Client(f"127.0.0.1:{port}") as client:
        subscription = client.subscribe(from_oldest=True)
        fakes.detections.publish(3)
        events = _take(subscription, 3)
        server.stop()
        fakes.detections.publish(7)  # frames 4..10 while the client is away ...
        fakes.detections.trim(oldest=8)  # ... and retention drops 4..7 before it is back
        server = start(fakes, port=port)
        try:
            events += _take(subscription, 4)
        finally:
            subscription.cancel()
            server.stop()
    gap = events[3]
    assert gap.HasField("gap")
    assert (gap.gap.after, gap.gap.resumed_at, gap.gap.missed) == (position(3), position(8), 4)
    assert _numbers(events) == [1, 2, 3, 8, 9, 10]


def test_a_gap_at_the_start(client_and_fakes: tuple[Client, Fakes]) -> None:
    client, fakes = client_and_fakes
    fakes.detections.publish(6)
    fakes.detections.trim(oldest=5)
    with client.subscribe(after=position(2)) as subscription:
        events = _take(subscription, 3)
    assert events[0].gap.missed == 2
    assert _numbers(events) == [5, 6]
    assert subscription.position == position(6)


def test_the_filters_reach_the_server(client_and_fakes: tuple[Client, Fakes]) -> None:
    client, fakes = client_and_fakes
    fakes.detections.publish(1, stream="cam-2")
    fakes.detections.publish(1, stream="cam-1")
    with client.subscribe(
        stream_ids=["cam-1"], classes=["Mask"], min_confidence=0.5, after=position(0)
    ) as subscription:
        (event,) = _take(subscription, 1)
    assert event.frame.frame.stream_id == "cam-1"
    assert [o.label for o in event.frame.objects] == ["Mask"]
    request = fakes.detections.requests[0]
    assert list(request.stream_ids) == ["cam-1"]
    assert list(request.classes) == ["Mask"]
    assert request.min_confidence == pytest.approx(0.5)


def test_cancel_from_another_thread_ends_the_iteration(
    client_and_fakes: tuple[Client, Fakes],
) -> None:
    client, _ = client_and_fakes
    subscription = client.subscribe()  # nothing is published: it waits
    threading.Timer(0.3, subscription.cancel).start()
    started = time.monotonic()
    assert list(subscription) == []
    assert time.monotonic() - started < 5


def test_an_absent_server_is_reported_at_once() -> None:
    port = free_port()
    with Client(f"127.0.0.1:{port}") as client:
        started = time.monotonic()
        with pytest.raises(ServerUnavailableError) as caught:
            next(client.subscribe())
    assert str(caught.value).startswith(f"cannot reach the Heron server at 127.0.0.1:{port}: ")
    assert time.monotonic() - started < 5


def test_a_server_gone_for_good_ends_the_subscription(fakes: Fakes) -> None:
    server = start(fakes)
    settings = ClientSettings(target=f"127.0.0.1:{server.port}", reconnect_timeout_s=1.0)
    with Client(settings) as client:
        subscription = client.subscribe(from_oldest=True)
        fakes.detections.publish(1)
        _take(subscription, 1)
        server.stop()
        started = time.monotonic()
        with pytest.raises(ServerUnavailableError, match="calling again failed for 1 s"):
            next(subscription)
    assert time.monotonic() - started < 10
