"""Drive the inference service in-process against a real Redis, and read what it wrote."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import redis
from heron.core import streams
from heron.core.bus import RedisBus
from heron.core.framestore import FrameStore, Letterbox, SharedMemoryRing, segment_name
from heron.core.plan.settings.inference import InferenceSettings
from heron.core.runtime import build_context, load_settings
from heron.inference.service import InferenceService
from heron.v1.bus_pb2 import DeadLetter
from heron.v1.detection_pb2 import FrameMetadata
from heron.v1.frame_pb2 import FrameBatch, FrameRef
from prometheus_client import CollectorRegistry

from tests.support.inprocess import no_forced_exit

SOURCE_W, SOURCE_H = 224, 128  # the source frames' size; the muxer halves it


def frame_image(stream: int, number: int, w: int, h: int) -> np.ndarray:
    """A deterministic BGR frame with a bright block that moves with the frame number."""
    rng = np.random.default_rng(1000 * stream + number)
    image = (rng.random((h, w, 3)) * 60).astype(np.uint8)
    x = (number * 7) % (w - 32)
    image[8:40, x : x + 32] = 230
    return image


class Harness:
    """One service, its bus and a frame store, for one test."""

    def __init__(self, redis_url: str, pipeline: Path, tmp: Path, **overrides: Any) -> None:
        self.settings = load_settings(
            InferenceSettings,
            [],
            pipeline_config=pipeline,
            redis_url=redis_url,
            read_block_ms=20,
            retry_initial_s=0.05,
            retry_max_s=0.2,
            **overrides,
        )
        self.registry = CollectorRegistry()
        self.ctx = build_context(self.settings, self.registry, exit=no_forced_exit)
        self.service = InferenceService(self.ctx)
        self.bus = RedisBus.from_url(redis_url, registry=CollectorRegistry())
        self.client: Any = redis.Redis.from_url(redis_url)
        self.ring = SharedMemoryRing.create(segment_name("inference-test"), 32, 1 << 17)
        self.store = FrameStore(self.ring)
        self.published: list[FrameRef] = []

    def close(self) -> None:
        self.service.close()
        self.bus.close()
        self.client.close()
        self.ring.close()
        self.ring.unlink()

    # --- input ----------------------------------------------------------------------------

    def batch(
        self,
        batch_id: int,
        streams_n: int,
        location: str = "jpeg",
        source: tuple[int, int] = (SOURCE_W, SOURCE_H),
        padding: bool = False,
    ) -> FrameBatch:
        """A muxer batch of 112x64 frames; the refs keep the `source` size they came from and
        say how the muxer placed it (letterboxed with `padding`)."""
        w, h = SOURCE_W // 2, SOURCE_H // 2
        box = Letterbox.fit(*source, w, h, padding=padding)
        frames = []
        for s in range(streams_n):
            ref = FrameRef(stream_id=f"source-{s}", frame_number=batch_id, source_id=s)
            image = frame_image(s, batch_id, w, h)
            frames.append(self.store.store(image, ref, location, placement=box))  # type: ignore[arg-type]
        self.published += frames
        return FrameBatch(batch_id=batch_id, frames=frames, width=w, height=h)

    def publish_batches(self, count: int, streams_n: int, location: str = "jpeg") -> None:
        publisher = self.bus.publisher(streams.batches(self.settings.pipeline), FrameBatch)
        for b in range(count):
            publisher.publish(self.batch(b, streams_n, location))

    # --- output ---------------------------------------------------------------------------

    def metadata(self) -> list[FrameMetadata]:
        key = streams.metadata("inference", self.settings.pipeline).key
        out = []
        for _, fields in self.client.xrange(key):
            message = FrameMetadata()
            message.ParseFromString(fields[b"pb"])
            out.append(message)
        return out

    def dead_letters(self, stream: str) -> list[DeadLetter]:
        out = []
        for _, fields in self.client.xrange(streams.dead_letter(stream).key):
            letter = DeadLetter()
            letter.ParseFromString(fields[b"pb"])
            out.append(letter)
        return out

    def sample(self, name: str, **labels: str) -> float:
        """A metric of the service's registry (0 when never set)."""
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    def pending(self, stream: str) -> int:
        return int(self.client.xpending(stream, self.settings.group)["pending"])

    def run_until(self, done: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError("the service did not get there in time")
            self.service.step()

    @contextmanager
    def running(self) -> Iterator[threading.Thread]:
        """Step the service on a thread (as run_service would) until the block ends."""

        def loop() -> None:
            while not self.ctx.stopping:
                self.service.step()

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            yield thread
        finally:
            self.ctx.stop("test over")
            thread.join(timeout=30)
