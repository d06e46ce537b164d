"""Fixtures of the ingest tests: generated clips, pipeline files, an in-process ingest service."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from heron.core import streams
from heron.core.bus import codec
from heron.core.plan.settings.ingest import IngestSettings
from heron.core.runtime import build_context, load_settings
from heron.ingest.service import IngestService
from heron.v1.frame_pb2 import FrameRef
from heron.v1.stream_pb2 import StreamEvent
from prometheus_client import CollectorRegistry

from tests.ingest.clips import make_clip
from tests.support.inprocess import no_forced_exit

CLIP_FRAMES = 48


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 numbered 320x240 H.264 frames in MP4, made once per session."""
    return make_clip(tmp_path_factory.mktemp("clips") / "numbered.mp4", CLIP_FRAMES)


def write_pipeline(path: Path, sources: dict[int, dict[str, Any]], **groups: Any) -> Path:
    """A pipeline YAML with `sources` (enabled unless they say otherwise) and a fake sink."""
    data: dict[str, Any] = {
        "sources": {i: {"enable": True, **s} for i, s in sources.items()},
        "sinks": {0: {"type": "fake", "enable": True}},
        **groups,
    }
    path.write_text(yaml.safe_dump(data))
    return path


class Ingest:
    """An IngestService run in this process, with readers for what it published."""

    def __init__(self, service: IngestService, client: redis.Redis) -> None:
        self.service = service
        self.client = client
        self.registry: CollectorRegistry = service.ctx.metrics.registry

    def wait(self, done: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what or done}")
            time.sleep(0.02)

    def wait_finished(self, timeout: float = 30.0) -> None:
        self.wait(lambda: all(w.finished for w in self.service.workers), timeout, "streams to end")

    def frames(self, stream_id: str) -> list[FrameRef]:
        key = streams.frames(stream_id).key
        entries: Any = self.client.xrange(key)
        return [_decode(FrameRef, fields) for _, fields in entries]

    def events(self, pipeline: str = "default") -> list[StreamEvent]:
        key = streams.events(pipeline).key
        entries: Any = self.client.xrange(key)
        return [_decode(StreamEvent, fields) for _, fields in entries]

    def event_kinds(self, stream_id: str) -> list[str]:
        return [str(e.WhichOneof("event")) for e in self.events() if e.stream_id == stream_id]

    def metric(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    def stop(self) -> None:
        self.service.drain()
        self.service.close()
        self.service.ctx.shutdown.finished()  # what run_service does once drained


def _decode(message_class: type[Any], fields: dict[bytes, bytes]) -> Any:
    message = message_class()
    message.ParseFromString(fields[codec.PB_FIELD])
    return message


@pytest.fixture
def run_ingest(redis_url: str) -> Iterator[Callable[..., Ingest]]:
    """Start ingest on a pipeline file with settings overrides; stopped after the test."""
    started: list[Ingest] = []
    client = redis.Redis.from_url(redis_url)

    def start(pipeline_file: Path, **settings: Any) -> Ingest:
        loaded = load_settings(IngestSettings, redis_url=redis_url, metrics={"port": 0}, **settings)
        service = IngestService(build_context(loaded, exit=no_forced_exit), pipeline=pipeline_file)
        ingest = Ingest(service, client)
        started.append(ingest)
        service.start()
        return ingest

    yield start
    for ingest in started:
        ingest.stop()
    client.close()
