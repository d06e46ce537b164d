"""An IngestService on in-memory streams (or Redis), with a command sender and readers of what
it published: the harness of the run-time source tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from google.protobuf.message import Message
from heron.core import streams
from heron.core.bus import Bus, Transport
from heron.core.bus.tail import START
from heron.core.commands import CommandSender
from heron.core.plan.settings.ingest import IngestSettings
from heron.core.runtime import build_context, load_settings
from heron.core.streams import StreamName
from heron.ingest.service import IngestService
from heron.ingest.worker import StreamWorker
from heron.v1.commands_pb2 import Command, CommandReply, SourceChanges, SourcesReport
from heron.v1.frame_pb2 import FrameRef
from heron.v1.stream_pb2 import SourceSpec, StreamEvent
from prometheus_client import CollectorRegistry

from tests.ingest.conftest import write_pipeline
from tests.support.inprocess import no_forced_exit

PIPELINE = "rt"
LIVE = "lavfi://testsrc2=size=160x120:rate=30,realtime"  # plays until stopped
M = TypeVar("M", bound=Message)


def live_pipeline(path: Path, count: int = 1) -> Path:
    """A pipeline of `count` live test patterns: source-0, source-1, ..."""
    return write_pipeline(path, {i: {"type": "uri", "uri": LIVE} for i in range(count)})


class Live:
    """A started IngestService and a bus of the test's own on the same streams."""

    def __init__(self, service: IngestService, bus: Bus) -> None:
        self.service = service
        self.bus = bus
        self.pipeline = service.settings.pipeline
        self.sender = CommandSender(bus, self.pipeline)
        self.stopped = False

    def send(self, command: Command, timeout_s: float = 5.0) -> CommandReply:
        replies = self.sender.send(command, timeout_s)
        assert len(replies) == 1, f"expected one reply, got {replies}"
        return replies[0]

    def add(self, timeout_s: float = 5.0, **spec: Any) -> CommandReply:
        return self.send(Command(add_source=SourceSpec(**spec)), timeout_s)

    def remove(self, stream_id: str) -> CommandReply:
        return self.send(Command(remove_source=stream_id))

    def worker(self, stream_id: str) -> StreamWorker:
        return next(w for w in self.service.workers if w.stream_id == stream_id)

    def messages(self, stream: StreamName, message_class: type[M]) -> list[M]:
        read = self.bus.tail(stream, message_class).read(START, 100_000)
        return [e.message for e in read.entries if e.message is not None]

    def frames(self, stream_id: str) -> list[FrameRef]:
        return self.messages(streams.frames(stream_id), FrameRef)

    def events(self, stream_id: str | None = None) -> list[StreamEvent]:
        found = self.messages(streams.events(self.pipeline), StreamEvent)
        return [e for e in found if stream_id is None or e.stream_id == stream_id]

    def event_kinds(self, stream_id: str) -> list[str]:
        return [str(e.WhichOneof("event")) for e in self.events(stream_id)]

    def changes(self) -> SourceChanges | None:
        return self.bus.newest(streams.source_changes(self.pipeline), SourceChanges)

    def report(self) -> SourcesReport | None:
        return self.bus.newest(streams.source_status(self.pipeline), SourcesReport)

    def stop(self) -> None:
        self.stopped = True
        self.service.drain()
        self.service.close()
        self.service.ctx.shutdown.finished()


def wait(done: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


StartIngest = Callable[..., Live]


def starter(transport: Transport, bus: Bus, **base: Any) -> Iterator[StartIngest]:
    """Yields start(pipeline_file, **settings); every service started is stopped at the end."""
    started: list[Live] = []

    def start(pipeline: Path, **settings: Any) -> Live:
        loaded = load_settings(
            IngestSettings,
            metrics={"port": 0},
            **{
                "pipeline": PIPELINE,
                "frame_location": "jpeg",
                "frame_stream_max_len": 10_000,
                **base,
                **settings,
            },
        )
        ctx = build_context(loaded, CollectorRegistry(), exit=no_forced_exit, transport=transport)
        live = Live(IngestService(ctx, pipeline=pipeline), bus)
        started.append(live)
        live.service.start()
        return live

    yield start
    for live in started:
        if not live.stopped:
            live.stop()
    bus.close()
