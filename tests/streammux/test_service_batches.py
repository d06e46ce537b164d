"""Streammux against a real Redis: producers publish FrameRefs, the muxer runs in this
process, a consumer reads the FrameBatches and the pixels behind them."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
import yaml
from heron.core import streams
from heron.core.bus import Consumer, RedisBus
from heron.core.framestore import (
    FrameReader,
    FrameStore,
    Letterbox,
    Location,
    SharedMemoryRing,
    segment_name,
)
from heron.core.plan.settings.streammux import StreammuxSettings
from heron.core.runtime import SettingsError, build_context, load_settings
from heron.streammux.service import Streammux
from heron.streammux.sources import stream_id_of
from heron.v1.bus_pb2 import DeadLetter
from heron.v1.frame_pb2 import FrameBatch, FrameRef
from heron.v1.stream_pb2 import SourceSpec, StreamEvent
from prometheus_client import CollectorRegistry

from tests.support.inprocess import no_forced_exit

T = TypeVar("T")


def wait_for(get: Callable[[], T], what: str, timeout: float = 15) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = get()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def write_pipeline(path: Path, **streammux: Any) -> Path:
    """A pipeline YAML: one (absent) file source, a fake sink, and the [streammux] group."""
    data = {
        "sources": {0: {"type": "uri", "enable": True, "uri": f"file://{path.parent}/none.mp4"}},
        "sinks": {0: {"type": "fake", "enable": True}},
        "streammux": streammux,
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def fill(source_id: int, frame_number: int) -> int:
    """The pixel value a test frame is filled with: who it is, readable after scaling."""
    return (source_id * 40 + frame_number * 3) % 256


class Producer:
    """What ingest does for one source: pixels into its ring, FrameRefs onto its stream."""

    def __init__(
        self, bus: RedisBus, stream_id: str, source_id: int, size: tuple[int, int]
    ) -> None:
        self.stream_id, self.source_id, self.size = stream_id, source_id, size
        width, height = size
        self.ring = SharedMemoryRing.create(segment_name(stream_id), 64, width * height * 3)
        self.store = FrameStore(self.ring)
        self.publisher = bus.publisher(streams.frames(stream_id), FrameRef)
        self.next = 0

    def publish(
        self, count: int, image: np.ndarray | None = None, location: Location = "shm"
    ) -> None:
        width, height = self.size
        for _ in range(count):
            n = self.next
            pixels = (
                image
                if image is not None
                else np.full((height, width, 3), fill(self.source_id, n), np.uint8)
            )
            ref = FrameRef(stream_id=self.stream_id, source_id=self.source_id, frame_number=n,
                           pts=n * 3000, time_base_num=1, time_base_den=90000)  # fmt: skip
            ref.capture_time.FromNanoseconds(1_700_000_000_000_000_000 + n)
            self.publisher.publish(self.store.store(pixels, ref, location))
            self.next += 1

    def close(self) -> None:
        self.ring.unlink()
        self.ring.close()


class Mux:
    """The streammux service run in a thread of this process, as run_service would run it."""

    def __init__(self, settings: StreammuxSettings) -> None:
        self.ctx = build_context(settings, CollectorRegistry(), exit=no_forced_exit)
        self.service = Streammux(self.ctx)
        self.service.start()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.ctx.stopping:
                self.service.step()
            self.service.drain()
        except BaseException as e:
            self.error = e
        finally:
            self.service.close()

    def stop(self) -> None:
        self.ctx.stop("test over")
        self.thread.join(20)
        if self.error is not None:
            raise self.error

    def metric(self, name: str, **labels: str) -> float:
        value = self.ctx.metrics.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value


class World:
    """One test's Redis, pipeline name, producers, muxer and batch reader."""

    def __init__(self, redis_url: str, tmp_path: Path) -> None:
        self.redis_url = redis_url
        self.tmp_path = tmp_path
        self.prefix = f"t{uuid.uuid4().hex[:6]}"
        self.pipeline = self.prefix
        self.bus = RedisBus.from_url(redis_url, registry=CollectorRegistry())
        self.producers: list[Producer] = []
        self.mux: Mux | None = None
        self.batches: Consumer[FrameBatch] = self.bus.consumer(
            streams.batches(self.pipeline), FrameBatch, "test", "test-0"
        )
        self.reader = FrameReader()

    def producer(self, name: str, source_id: int, size: tuple[int, int] = (64, 48)) -> Producer:
        p = Producer(self.bus, f"{self.prefix}-{name}", source_id, size)
        self.producers.append(p)
        return p

    def start_mux(self, pipeline_config: Path | None = None, **settings: Any) -> Mux:
        loaded = load_settings(
            StreammuxSettings,
            [],
            redis_url=self.redis_url,
            pipeline=self.pipeline,
            pipeline_config=pipeline_config,
            stream_match=f"{self.prefix}-*",
            discovery_interval_s=0.05,
            read_block_ms=20,
            **settings,
        )
        self.mux = Mux(loaded)
        return self.mux

    def event(self, event: StreamEvent) -> None:
        self.bus.publisher(streams.events(self.pipeline), StreamEvent).publish(event)

    def read_batches(self, frames: int, timeout: float = 15) -> list[FrameBatch]:
        """Batches until they hold `frames` frames in all; acknowledged as read."""
        got: list[FrameBatch] = []
        deadline = time.monotonic() + timeout
        while sum(len(b.frames) for b in got) < frames:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {sum(len(b.frames) for b in got)} of {frames} frames")
            deliveries = self.batches.read(count=100, block_ms=100)
            got += [d.message for d in deliveries]
            self.batches.ack(deliveries)
        return got

    def close(self) -> None:
        if self.mux is not None and self.mux.thread.is_alive():
            self.mux.stop()
        self.reader.close()
        for p in self.producers:
            p.close()
        self.bus.close()


@pytest.fixture
def world(redis_url: str, tmp_path: Path) -> Iterator[World]:
    w = World(redis_url, tmp_path)
    yield w
    w.close()


def frame_ids(batches: list[FrameBatch]) -> list[tuple[str, int]]:
    return [(f.stream_id, f.frame_number) for b in batches for f in b.frames]


def test_n_sources_give_full_batches_holding_every_frame_once(world: World, tmp_path: Path) -> None:
    producers = [world.producer(f"cam{i}", source_id=i) for i in range(3)]
    for p in producers:
        p.publish(8)  # published before the muxer starts: found by scanning
    # buffer-pool-size 8: the output ring holds all 8 batches until the test reads them.
    config = write_pipeline(
        tmp_path / "p.yaml", batch_size=3, width=96, height=64, buffer_pool_size=8
    )
    mux = world.start_mux(config)
    batches = world.read_batches(24)
    assert [len(b.frames) for b in batches] == [3] * 8
    assert sorted(frame_ids(batches)) == sorted(
        (p.stream_id, n) for p in producers for n in range(8)
    )
    assert [b.batch_id for b in batches] == list(range(8))
    for stream_id in {p.stream_id for p in producers}:  # each source's order is kept
        numbers = [n for s, n in frame_ids(batches) if s == stream_id]
        assert numbers == sorted(numbers)
    for batch in batches:
        assert (batch.width, batch.height) == (96, 64)
        for frame, pixels in zip(batch.frames, world.reader.read_batch(batch), strict=True):
            # Source id, frame number, pts, time base, capture time and source size survive;
            # the pixels are the right frame's, scaled to 96x64.
            assert frame.pts == frame.frame_number * 3000
            assert (frame.time_base_num, frame.time_base_den) == (1, 90000)
            assert (
                frame.capture_time.ToNanoseconds() == 1_700_000_000_000_000_000 + frame.frame_number
            )
            assert (frame.width, frame.height) == (64, 48)
            assert (frame.stored_width, frame.stored_height) == (96, 64)  # the muxer's size
            assert Letterbox.from_proto(frame) == Letterbox.fit(64, 48, 96, 64, padding=False)
            assert pixels.shape == (64, 96, 3)
            assert (pixels == fill(frame.source_id, frame.frame_number)).all()
    # Metrics and acknowledgements follow the publish: wait for the last batch's.
    full = {"pipeline": world.pipeline, "trigger": "full"}
    wait_for(lambda: mux.metric("heron_streammux_batches_total", **full) == 8, "8 full batches")
    assert mux.metric("heron_streammux_batch_fill_ratio_sum", pipeline=world.pipeline) == 8.0

    def unacked() -> int:
        client = world.bus.client
        return sum(
            client.xpending(streams.frames(p.stream_id).key, "streammux")["pending"]
            for p in producers
        )

    wait_for(lambda: unacked() == 0, "every frame to be acknowledged on its stream")


def test_a_partial_batch_is_pushed_when_the_push_timeout_runs_out(
    world: World, tmp_path: Path
) -> None:
    config = write_pipeline(
        tmp_path / "p.yaml", batch_size=4, batched_push_timeout=40_000, width=64, height=48
    )
    mux = world.start_mux(config)
    cam = world.producer("cam0", source_id=0)
    cam.publish(2)
    (batch,) = world.read_batches(2)
    assert [f.frame_number for f in batch.frames] == [0, 1]
    labels = {"pipeline": world.pipeline}
    wait_for(lambda: mux.metric("heron_streammux_push_timeout_flushes_total", **labels), "a flush")
    assert mux.metric("heron_streammux_push_timeout_flushes_total", **labels) == 1
    assert mux.metric("heron_streammux_batches_total", trigger="timeout", **labels) == 1
    assert mux.metric("heron_streammux_batch_fill_ratio_sum", **labels) == 0.5


def test_sources_added_mid_run_are_batched_and_eos_removes_them(
    world: World, tmp_path: Path
) -> None:
    config = write_pipeline(
        tmp_path / "p.yaml", batch_size=2, batched_push_timeout=30_000, width=64, height=48
    )
    mux = world.start_mux(config)
    first = world.producer("first", source_id=0)
    first.publish(4)
    assert sorted(frame_ids(world.read_batches(4))) == [(first.stream_id, n) for n in range(4)]
    # A second source announced by a Started event, a third found only by scanning.
    announced = world.producer("announced", source_id=1)
    spec = SourceSpec(stream_id=announced.stream_id, source_id=1)
    world.event(
        StreamEvent(stream_id=announced.stream_id, started=StreamEvent.Started(source=spec))
    )
    announced.publish(3)
    scanned = world.producer("scanned", source_id=2)
    scanned.publish(3)
    later = frame_ids(world.read_batches(6))
    assert sorted(later) == sorted([(announced.stream_id, n) for n in range(3)]
                                   + [(scanned.stream_id, n) for n in range(3)])  # fmt: skip
    live = mux.service.sources.live
    assert live == sorted([first.stream_id, announced.stream_id, scanned.stream_id])
    # End of stream: frames still in the stream are batched, then the source goes.
    first.publish(1)
    world.event(StreamEvent(stream_id=first.stream_id, eos=StreamEvent.EndOfStream(frames=5)))
    assert frame_ids(world.read_batches(1)) == [(first.stream_id, 4)]
    wait_for(lambda: first.stream_id not in mux.service.sources.live, "the ended source to go")
    time.sleep(0.2)  # several discovery scans: an ended stream with no new frames stays gone
    assert first.stream_id not in mux.service.sources.live
    wait_for(lambda: mux.metric("heron_streammux_sources", pipeline=world.pipeline) == 2, "gauge")
    first.publish(1)  # new frames after EOS: the stream is picked up again
    assert frame_ids(world.read_batches(1)) == [(first.stream_id, 5)]


def test_padding_keeps_the_aspect_ratio_and_boxes_map_back(world: World, tmp_path: Path) -> None:
    config = write_pipeline(
        tmp_path / "p.yaml", batch_size=1, width=960, height=544, enable_padding=True
    )
    world.start_mux(config)
    cam = world.producer("wide", source_id=0, size=(1280, 720))
    image = np.zeros((720, 1280, 3), np.uint8)
    drawn = (200, 120, 840, 600)
    image[drawn[1] : drawn[3], drawn[0] : drawn[2]] = 255
    cam.publish(1, image)
    (batch,) = world.read_batches(1)
    (frame,) = batch.frames
    (pixels,) = world.reader.read_batch(batch)
    assert (pixels[540:] == 0).all()  # black bars below the 960x540 picture
    ys, xs = np.nonzero(pixels[:, :, 0] > 127)
    found = [[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]]
    # The FrameRef says what it points at: the source's size, the muxer's size and where the
    # picture went (960x540 at the top-left; the rest is padding).
    assert (frame.width, frame.height, frame.stored_width, frame.stored_height) == (
        1280,
        720,
        960,
        544,
    )
    assert (frame.placement.content_width, frame.placement.content_height) == (960, 540)
    assert (frame.placement.offset_x, frame.placement.offset_y) == (0, 0)
    # What a detector finds in the batch frame maps back to the source with the ref alone:
    # no muxer size, no enable-padding from the config.
    box = Letterbox.from_proto(frame)
    np.testing.assert_allclose(box.to_source(found)[0], drawn, atol=1.5)


def test_bad_and_overwritten_frames_are_counted_and_never_block(
    world: World, tmp_path: Path
) -> None:
    config = write_pipeline(
        tmp_path / "p.yaml", batch_size=1, batched_push_timeout=20_000, width=64, height=48
    )
    mux = world.start_mux(config)
    cam = world.producer("cam0", source_id=0)
    publisher = cam.publisher
    publisher.publish(FrameRef(stream_id=cam.stream_id, frame_number=0))  # no location
    cam.next = 1
    cam.publish(1)
    (batch,) = world.read_batches(1)
    assert [f.frame_number for f in batch.frames] == [1]
    dead_stream = streams.dead_letter(streams.frames(cam.stream_id))
    dead = world.bus.consumer(dead_stream, DeadLetter, "test", "test-0")
    (delivery,) = dead.read(count=10, block_ms=1000)
    letter = delivery.message
    assert letter.reason.startswith("bad_frame: FrameRef")
    assert "no location" in letter.reason
    assert (
        mux.metric("heron_streammux_frames_dropped_total", stream=cam.stream_id, reason="bad_frame")
        == 1
    )
    # A frame whose slot the producer already reused is dropped as overwritten.
    stale = cam.store.store(
        np.zeros((48, 64, 3), np.uint8), FrameRef(stream_id=cam.stream_id, frame_number=2)
    )
    for _ in range(cam.ring.slots):
        cam.ring.put(np.zeros((48, 64, 3), np.uint8))
    publisher.publish(stale)
    overwritten = {"stream": cam.stream_id, "reason": "overwritten"}
    wait_for(
        lambda: mux.metric("heron_streammux_frames_dropped_total", **overwritten),
        "the overwritten frame to be counted",
    )


def test_without_a_pipeline_config_the_batch_follows_the_live_sources(world: World) -> None:
    a, b = world.producer("a", 0), world.producer("b", 1)
    a.publish(2)
    b.publish(2)
    mux = world.start_mux(None)
    batches = world.read_batches(4)
    assert all(len(batch.frames) <= 2 for batch in batches)
    assert (batches[0].width, batches[0].height) == (1920, 1080)  # [streammux] defaults
    assert mux.service.batcher.batch_size() == 2


def test_stopping_publishes_what_was_read_as_a_last_batch(world: World, tmp_path: Path) -> None:
    config = write_pipeline(tmp_path / "p.yaml", batch_size=4, width=64, height=48)
    mux = world.start_mux(config)  # no push timeout: 3 frames never make a batch on their own
    cam = world.producer("cam0", source_id=0)
    cam.publish(3)
    wait_for(lambda: mux.service.batcher.pending() == 3, "the frames to be read")
    mux.stop()
    (batch,) = world.read_batches(3)
    assert [f.frame_number for f in batch.frames] == [0, 1, 2]
    assert (
        mux.metric("heron_streammux_batches_total", pipeline=world.pipeline, trigger="drain") == 1
    )
    pending = world.bus.client.xpending(streams.frames(cam.stream_id).key, "streammux")
    assert pending["pending"] == 0  # acknowledged before the process would exit


@pytest.mark.parametrize(
    ("key", "stream_id"),
    [
        ("heron:frames:cam-1", "cam-1"),
        ("heron:frames:cam-1:dead", None),  # its dead-letter stream
        ("heron:frames:", None),
        ("heron:batches:default", None),
        ("heron:frames:-bad", None),
    ],
)
def test_only_frame_stream_keys_name_sources(key: str, stream_id: str | None) -> None:
    assert stream_id_of(key) == stream_id


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("pipeline", "two words", "not a valid stream id"),
        ("output_location", "gpu", "'shm' or 'jpeg'"),
        ("jpeg_quality", 0, "greater than or equal to 1"),
        ("ring_batches", 0, "greater than or equal to 1"),
        ("discovery_interval_s", 0, "greater than 0"),
    ],
)
def test_bad_settings_name_the_field(field: str, value: object, message: str) -> None:
    with pytest.raises(SettingsError, match=message) as caught:
        load_settings(StreammuxSettings, [], **{field: value})
    assert field in str(caught.value)


def test_jpeg_in_jpeg_out_for_consumers_on_other_hosts(world: World, tmp_path: Path) -> None:
    config = write_pipeline(tmp_path / "p.yaml", batch_size=2, width=32, height=24)
    world.start_mux(config, output_location="jpeg", jpeg_quality=95)
    cam = world.producer("far", source_id=3)
    cam.publish(2, location="jpeg")
    batches = world.read_batches(2)
    frames = [f for b in batches for f in b.frames]
    assert [f.WhichOneof("location") for f in frames] == ["jpeg", "jpeg"]
    assert {(f.stored_width, f.stored_height) for f in frames} == {(32, 24)}
    for batch in batches:
        for frame, pixels in zip(batch.frames, world.reader.read_batch(batch), strict=True):
            assert pixels.shape == (24, 32, 3)
            assert abs(int(pixels.mean()) - fill(3, frame.frame_number)) <= 2
