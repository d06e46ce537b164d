"""Commands over the bus: a sender gets the replies of the stage that owns the command, on
Redis and in one process alike; expired and foreign commands are never applied."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from heron.core import streams
from heron.core.bus import Bus, BusSettings, MemoryBus, MemoryStreams, RedisBus
from heron.core.commands import (
    CommandFollower,
    CommandSender,
    ReplyCode,
    expired,
    reply,
)
from heron.v1.commands_pb2 import Command, CommandReply
from heron.v1.stream_pb2 import SourceSpec
from prometheus_client import CollectorRegistry

PIPELINE = "cmd-test"


@pytest.fixture(params=["memory", "redis"])
def bus(request: pytest.FixtureRequest) -> Iterator[Bus]:
    made: Bus
    if request.param == "redis":
        made = RedisBus.from_url(request.getfixturevalue("redis_url"), registry=CollectorRegistry())
    else:
        made = MemoryBus(MemoryStreams(), BusSettings(), registry=CollectorRegistry())
    yield made
    made.close()


def adds_only(command: Command) -> CommandReply | None:
    """A stage owning add_source: refuses an empty uri, ignores everything else."""
    if command.WhichOneof("command") != "add_source":
        return None
    if not command.add_source.uri:
        return reply(ReplyCode.INVALID_ARGUMENT, "source.uri: required")
    answer = reply(ReplyCode.OK)
    answer.source.source.CopyFrom(command.add_source)
    return answer


def follower(bus: Bus, instance: str = "ingest-0") -> CommandFollower:
    running = CommandFollower(bus, PIPELINE, service="ingest", instance=instance, handle=adds_only)
    running.start()
    return running


def test_a_command_gets_the_reply_of_the_stage_that_owns_it(bus: Bus) -> None:
    stage = follower(bus)
    try:
        sent = Command(add_source=SourceSpec(uri="file:///a.mp4"))
        replies = CommandSender(bus, PIPELINE).send(sent, timeout_s=5.0)
    finally:
        stage.stop()
    assert [(r.code, r.service, r.instance) for r in replies] == [(0, "ingest", "ingest-0")]
    assert replies[0].request_id == sent.request_id != ""
    assert replies[0].source.source.uri == "file:///a.mp4"
    assert stage.applied == 1


def test_a_refusal_comes_back_with_its_code_and_field(bus: Bus) -> None:
    stage = follower(bus)
    try:
        replies = CommandSender(bus, PIPELINE).send(Command(add_source=SourceSpec()), 5.0)
    finally:
        stage.stop()
    assert [(r.code, r.message) for r in replies] == [
        (ReplyCode.INVALID_ARGUMENT, "source.uri: required")
    ]
    assert stage.applied == 0


def test_nobody_answers_a_command_no_stage_owns(bus: Bus) -> None:
    stage = follower(bus)
    try:
        started = time.monotonic()
        replies = CommandSender(bus, PIPELINE).send(Command(remove_source="cam-1"), 0.5)
    finally:
        stage.stop()
    assert replies == []
    assert 0.45 < time.monotonic() - started < 3.0


def test_replies_of_every_instance_are_collected_until_enough(bus: Bus) -> None:
    stages = [follower(bus, f"inference-{i}") for i in range(3)]
    try:
        replies = CommandSender(bus, PIPELINE).send(
            Command(add_source=SourceSpec(uri="rtsp://cam/1")),
            5.0,
            enough=lambda got: len(got) == 3,
        )
    finally:
        for stage in stages:
            stage.stop()
    assert sorted(r.instance for r in replies) == ["inference-0", "inference-1", "inference-2"]


def test_a_command_sent_before_the_stage_started_is_never_applied(bus: Bus) -> None:
    assert CommandSender(bus, PIPELINE).send(Command(add_source=SourceSpec(uri="a")), 0.1) == []
    stage = CommandFollower(bus, PIPELINE, service="ingest", instance="late", handle=adds_only)
    assert stage.poll() == 0
    assert stage.applied == 0


def test_an_expired_command_is_skipped() -> None:
    command = Command(add_source=SourceSpec(uri="a"))
    command.expires.FromSeconds(int(time.time()) - 1)
    assert expired(command)
    assert not expired(Command())
    bus = MemoryBus(MemoryStreams(), BusSettings(), registry=CollectorRegistry())
    stage = CommandFollower(bus, PIPELINE, service="ingest", instance="i", handle=adds_only)
    bus.publisher(streams.commands(PIPELINE), Command).publish(command)
    assert stage.poll() == 0


def test_a_handler_that_raises_answers_internal_and_keeps_following() -> None:
    bus = MemoryBus(MemoryStreams(), BusSettings(), registry=CollectorRegistry())

    def broken(command: Command) -> CommandReply | None:
        raise KeyError("boom")

    stage = CommandFollower(bus, PIPELINE, service="ingest", instance="i", handle=broken)
    stage.start()
    try:
        replies = CommandSender(bus, PIPELINE).send(Command(remove_source="x"), 5.0)
    finally:
        stage.stop()
    assert [(r.code, r.message) for r in replies] == [
        (ReplyCode.INTERNAL, "ingest: KeyError: 'boom'")
    ]
    assert stage.is_alive() is False
