"""Drive the tracker service in-process against a real Redis, and read what it wrote."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from heron.core import streams
from heron.core.bus import RedisBus
from heron.core.plan.settings.tracker import TrackerSettings
from heron.core.runtime import build_context, load_settings
from heron.tracker.service import TrackerService
from heron.v1.bus_pb2 import DeadLetter
from heron.v1.detection_pb2 import BoundingBox, DetectedObject, FrameMetadata
from heron.v1.frame_pb2 import FrameRef
from heron.v1.stream_pb2 import StreamEvent
from prometheus_client import CollectorRegistry

from tests.support.inprocess import no_forced_exit

APP = """\
[application]
enable-perf-measurement=1

[source0]
enable=1
type=3
uri=file:///nonexistent/clip.mp4
num-sources=3

[sink0]
enable=1
type=1

[streammux]
width={mux_w}
height={mux_h}
batch-size=2

[tracker]
enable={enable}
tracker-width=320
tracker-height=192
ll-lib-file=/opt/nvidia/deepstream/deepstream/lib/{library}
ll-config-file=tracker.yml
enable-batch-process={batch}
tracking-id-reset-mode={reset_mode}
"""


def write_pipeline(
    folder: Path,
    library: str = "libnvds_mot_iou.so",
    ll_config: str = "TargetManagement:\n  probationAge: 0\n",
    *,
    enable: int = 1,
    batch: int = 1,
    reset_mode: int = 0,
    muxer: tuple[int, int] = (320, 192),
) -> Path:
    (folder / "tracker.yml").write_text(ll_config)
    path = folder / "app.txt"
    path.write_text(
        APP.format(
            library=library,
            enable=enable,
            batch=batch,
            reset_mode=reset_mode,
            mux_w=muxer[0],
            mux_h=muxer[1],
        )
    )
    return path


def obj(x: float, y: float, w: float = 40, h: float = 50, label: str = "Mask") -> DetectedObject:
    return DetectedObject(
        bbox=BoundingBox(left=x, top=y, width=w, height=h), label=label, confidence=0.9
    )


def meta(
    stream: str, number: int, *objects: DetectedObject, inferred: bool = True, **frame: Any
) -> FrameMetadata:
    ref = FrameRef(stream_id=stream, frame_number=number, width=320, height=192, **frame)
    return FrameMetadata(frame=ref, objects=list(objects), model_name="m", inferred=inferred)


class Harness:
    def __init__(self, redis_url: str, pipeline_config: Path, **overrides: Any) -> None:
        self.settings = load_settings(
            TrackerSettings,
            [],
            pipeline_config=pipeline_config,
            redis_url=redis_url,
            read_block_ms=20,
            **overrides,
        )
        self.registry = CollectorRegistry()
        self.ctx = build_context(self.settings, self.registry, exit=no_forced_exit)
        self.service = TrackerService(self.ctx)
        self.bus = RedisBus.from_url(redis_url, registry=CollectorRegistry())
        self.client: Any = redis.Redis.from_url(redis_url)
        self.input = streams.metadata("inference", self.settings.pipeline)
        self.output = streams.metadata("tracker", self.settings.pipeline)

    def close(self) -> None:
        self.service.close()
        self.bus.close()
        self.client.close()

    def publish(self, *messages: FrameMetadata) -> None:
        self.bus.publisher(self.input, FrameMetadata).publish_many(list(messages))

    def event(self, event: StreamEvent) -> None:
        self.bus.publisher(streams.events(self.settings.pipeline), StreamEvent).publish(event)

    def raw(self, fields: dict[str, bytes]) -> None:
        self.client.xadd(self.input.key, fields)

    def out(self) -> list[FrameMetadata]:
        messages = []
        for _, fields in self.client.xrange(self.output.key):
            m = FrameMetadata()
            m.ParseFromString(fields[b"pb"])
            messages.append(m)
        return messages

    def dead_letters(self) -> list[DeadLetter]:
        letters = []
        for _, fields in self.client.xrange(streams.dead_letter(self.input).key):
            letter = DeadLetter()
            letter.ParseFromString(fields[b"pb"])
            letters.append(letter)
        return letters

    def pending(self) -> int:
        return int(self.client.xpending(self.input.key, self.settings.group)["pending"])

    def metric(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    def run_until(self, done: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError("the service did not get there in time")
            self.service.step()
