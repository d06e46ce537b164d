"""The client against the real control service (on a real Redis): a subscriber whose server
restarts mid-stream resumes by itself, counting every frame once, and sees a Gap when the
frames it missed were trimmed meanwhile."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from heron.client import Client, InvalidRequestError, Subscription
from heron.core.bus import RedisBus
from heron.v1 import control_pb2
from prometheus_client import CollectorRegistry

from tests.control.control_harness import (
    Control,
    Metadata,
    frame,
    heartbeat,
    new_pipeline,
    sources_report,
    wait_until,
)


@pytest.fixture
def pipeline() -> str:
    return new_pipeline()


@pytest.fixture
def metadata(redis_url: str, pipeline: str) -> Iterator[Metadata]:
    published = Metadata(redis_url, pipeline)
    yield published
    published.close()


def _take(subscription: Subscription, count: int) -> list[control_pb2.DetectionEvent]:
    return [next(subscription) for _ in range(count)]


def _numbers(events: list[control_pb2.DetectionEvent]) -> list[int]:
    return [e.frame.frame.frame_number for e in events if e.HasField("frame")]


def _restarted(redis_url: str, pipeline: str, port: int) -> Control:
    return Control(redis_url, pipeline, grpc={"listen": f"127.0.0.1:{port}", "grace_s": 0.5})


def test_a_restarted_server_costs_the_subscriber_nothing(
    redis_url: str, pipeline: str, metadata: Metadata
) -> None:
    server = Control(redis_url, pipeline)
    port = server.port
    reconnects: list[str] = []
    with Client(f"127.0.0.1:{port}") as client:
        subscription = client.subscribe(
            from_oldest=True, on_reconnect=lambda why, _delay: reconnects.append(why)
        )
        metadata.publish(range(10))
        events = _take(subscription, 6)
        server.stop()  # a rolling update: the control service goes away mid-stream
        metadata.publish(range(10, 30))  # the pipeline does not wait for it
        server = _restarted(redis_url, pipeline, port)
        try:
            events += _take(subscription, 24)
        finally:
            subscription.cancel()
            server.stop()
    assert _numbers(events) == list(range(30))  # every frame once, in order
    assert len({e.position for e in events}) == 30
    assert reconnects


def test_frames_trimmed_while_away_arrive_as_a_gap(
    redis_url: str, pipeline: str, metadata: Metadata
) -> None:
    server = Control(redis_url, pipeline)
    port = server.port
    with Client(f"127.0.0.1:{port}") as client:
        subscription = client.subscribe(from_oldest=True)
        metadata.publish(range(5))
        events = _take(subscription, 5)
        server.stop()
        metadata.publish(range(5, 20))
        # retention drops 5..14
        redis.Redis.from_url(redis_url).xtrim(metadata.stream.key, maxlen=5, approximate=False)
        server = _restarted(redis_url, pipeline, port)
        try:
            events += _take(subscription, 6)
        finally:
            subscription.cancel()
            server.stop()
    gap = events[5]
    assert gap.HasField("gap")
    assert gap.gap.missed == 10
    assert _numbers(events) == [*range(5), *range(15, 20)]


def test_a_malformed_position_is_refused_naming_the_field(redis_url: str, pipeline: str) -> None:
    server = Control(redis_url, pipeline)
    try:
        with (
            Client(f"127.0.0.1:{server.port}") as client,
            pytest.raises(InvalidRequestError) as caught,
        ):
            next(client.subscribe(after="yesterday"))
    finally:
        server.stop()
    assert caught.value.field == "after"
    assert str(caught.value).startswith("invalid request: after: expected a position")


def test_heron_watch_and_status_against_the_control_service(
    redis_url: str, pipeline: str, metadata: Metadata
) -> None:
    from heron.cli.main import app
    from typer.testing import CliRunner

    server = Control(redis_url, pipeline)
    target = f"127.0.0.1:{server.port}"
    runner = CliRunner()
    env = {"COLUMNS": "300", "HERON_TOKEN": ""}
    try:
        metadata.publisher.publish_many([frame("cam-0", n, [("Mask", 0.9)]) for n in range(3)])
        publish_status(redis_url, pipeline)
        wait_until(lambda: bool(server.service.board.services()))
        watched = runner.invoke(
            app, ["watch", "--server", target, "--after", "0-0:0", "--limit", "3"], env=env
        )
        bad = runner.invoke(app, ["watch", "--server", target, "--after", "yesterday"], env=env)
        status = runner.invoke(app, ["status", "--server", target], env=env)
    finally:
        server.stop()
    assert watched.exit_code == 0, watched.output
    assert [line.split()[1:4] for line in watched.stdout.splitlines()] == [
        ["stream=cam-0", f"frame={n}", "label=Mask"] for n in range(3)
    ]
    assert "resume with --after " in watched.stderr
    assert bad.exit_code == 1
    assert bad.stderr.startswith("error: invalid request: after: expected a position")
    assert status.exit_code == 0, status.output
    lines = status.stdout.splitlines()
    assert lines[0].startswith(f"pipeline {pipeline} at ")
    assert lines[1:5] == [
        "services:",
        "  inference inference-0 serving model=facemask:3",
        "sources:",
        "  cam-0 playing fps=25.0 frames=100 dropped=0 reconnects=0 uri=rtsp://cam/0",
    ]


def publish_status(redis_url: str, pipeline: str) -> None:
    """A heartbeat of an inference instance and a sources report, as the stages send them."""
    bus = RedisBus.from_url(redis_url, registry=CollectorRegistry())
    heartbeat(bus, pipeline, "inference", "inference-0", model_name="facemask", model_version="3")
    sources_report(bus, pipeline)
    bus.close()
