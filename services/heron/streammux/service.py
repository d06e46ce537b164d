"""Streammux: batches frames of N sources for inference, as DeepStream's nvstreammux does.

    python -m heron.streammux --config settings.yaml

Reads FrameRefs from every source's frame stream (consumer group `group`), forms batches of
`batch-size` (round-robin over sources; a partial batch goes out when `batched-push-timeout`
µs have passed since its first frame), scales each frame to the muxer's width x height
(keeping the aspect ratio with black right/bottom padding when `enable-padding` is set) into
this process's shared-memory ring, and publishes a heron.v1.FrameBatch on
streams.batches(pipeline). Inside a batch each FrameRef keeps its source's stream id, source
id, frame number, pts and capture time, and its width/height stay the *source* size; its
stored_width/height are the muxer's and its placement says where the picture went
(`heron.core.framestore.Letterbox.from_proto` maps boxes back with it). Frames are
acknowledged on their streams only after the batch is published. See docs/streammux.md.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import defaultdict
from contextlib import ExitStack
from typing import Any

import numpy as np
import numpy.typing as npt

from heron.core import streams
from heron.core.bus import Delivery, default_consumer_name
from heron.core.framestore import (
    FrameOverwrittenError,
    FrameReader,
    FrameStore,
    FrameStoreError,
    Letterbox,
    SegmentNotFoundError,
    SharedMemoryRing,
    encode_jpeg,
    segment_name,
)
from heron.core.plan.settings.streammux import MuxConfig, StreammuxSettings, load_mux_config
from heron.core.runtime import Service, ServiceContext, run_service
from heron.streammux.batcher import Batcher, Taken
from heron.streammux.metrics import StreammuxMetrics
from heron.streammux.sources import Discovery, SourceSet
from heron.v1.frame_pb2 import FrameBatch, FrameRef, PixelFormat
from heron.v1.stream_pb2 import StreamEvent

log = logging.getLogger(__name__)

STAGE = "streammux"
PRUNE_INTERVAL_S = 5.0  # how often rings of exited producers are unmapped
TAKE_WAIT_S = 0.25  # longest a step waits for a batch: keeps the liveness heartbeat ticking


class Streammux(Service[StreammuxSettings]):
    def __init__(self, ctx: ServiceContext[StreammuxSettings]) -> None:
        super().__init__(ctx)
        # What start() builds, released in reverse by close() (also after a failed start).
        self._resources = ExitStack()

    def start(self) -> None:
        settings = self.settings
        self.config: MuxConfig = load_mux_config(settings.pipeline_config)
        self.ctx.check_bus()
        self.bus = settings.bus(self.ctx.metrics.registry, self.ctx.transport)
        self._resources.callback(self.bus.close)
        self.metrics = StreammuxMetrics(self.ctx.metrics.registry, settings.pipeline)
        self.batcher: Batcher[Delivery[FrameRef]] = Batcher(
            self.config.batch_size,
            self.config.streammux.batched_push_timeout,
            max_pending_per_source=settings.max_pending_per_source,
        )
        self.reader = FrameReader()
        self._resources.callback(self.reader.close)
        self._open_output()
        self._start_sources()
        mux = self.config.streammux
        log.info(
            "muxing",
            extra={
                "batch_size": self.config.batch_size or "live sources",
                "batched_push_timeout_us": mux.batched_push_timeout,
                "width": mux.width,
                "height": mux.height,
                "enable_padding": mux.enable_padding,
                "ring": self.ring.name if self.ring else None,
            },
        )

    def _open_output(self) -> None:
        """The ring scaled frames go to, and the batch stream."""
        settings, mux = self.settings, self.config.streammux
        self.ring: SharedMemoryRing | None = None
        if settings.output_location == "shm":
            self.ring = SharedMemoryRing.create(
                segment_name(f"mux-{settings.pipeline}"),
                self.config.ring_slots(settings.ring_batches),
                mux.width * mux.height * 3,
            )
            self._resources.push(self.ring.__exit__)  # unlink, then close
        self.store = FrameStore(self.ring, jpeg_quality=settings.jpeg_quality)
        self.publisher = self.bus.publisher(streams.batches(settings.pipeline), FrameBatch)
        self.next_batch_id = self._last_batch_id() + 1
        self.next_prune = time.monotonic() + PRUNE_INTERVAL_S

    def _start_sources(self) -> None:
        """Reader threads per source, and the discovery thread that adds and ends them."""
        settings = self.settings
        name = settings.member or default_consumer_name()  # one member name on every stream
        self.sources = SourceSet(
            self.bus,
            self.batcher,
            group=settings.group,
            consumer_name=name,
            block_ms=settings.read_block_ms,
            match=settings.stream_match,
            on_change=self.metrics.set_sources,
        )
        self._resources.callback(self.sources.stop, timeout_s=1.0)
        events = self.bus.consumer(
            streams.events(settings.pipeline),
            StreamEvent,
            settings.group,
            name,
        )
        self.discovery = Discovery(self.sources, events, interval_s=settings.discovery_interval_s)
        self.discovery.start()
        self._resources.callback(self.discovery.stop)

    def step(self) -> None:
        self._check_threads()
        taken = self.batcher.take(TAKE_WAIT_S)
        if taken is not None:
            self.push(taken)
        if time.monotonic() >= self.next_prune:
            # Producers that restarted left rings behind: unmap them so the memory is freed.
            self.reader.prune()
            self.next_prune = time.monotonic() + PRUNE_INTERVAL_S

    def drain(self) -> None:
        """Stop reading, then publish and acknowledge every frame already read."""
        self.discovery.stop()
        self.sources.stop(timeout_s=2 * self.settings.read_block_ms / 1000 + 1)
        self.discovery.join(self.settings.discovery_interval_s + 1)
        taken = self.batcher.drain()
        if taken is not None:
            self.push(taken)

    def close(self) -> None:
        """Also runs after a failed start: releases whatever start() built, newest first."""
        self._resources.close()

    # --- one batch ----------------------------------------------------------------------------

    def push(self, taken: Taken[Delivery[FrameRef]]) -> FrameBatch:
        mux = self.config.streammux
        batch = FrameBatch(batch_id=self.next_batch_id, width=mux.width, height=mux.height)
        done: dict[str, list[Delivery[FrameRef]]] = defaultdict(list)
        for stream_id, delivery in taken.items:
            started = time.perf_counter()
            scaled = self._scaled(stream_id, delivery)
            if scaled is not None:
                batch.frames.append(scaled)
                self.ctx.metrics.observe(STAGE, time.perf_counter() - started, frame=scaled)
                self.metrics.frames.labels(stream_id).inc()
            done[stream_id].append(delivery)
        if batch.frames:
            self.publisher.publish(batch)
            self.next_batch_id += 1
            self.metrics.batch(
                taken.trigger.value, len(batch.frames), taken.batch_size, taken.waited_s
            )
        for stream_id, deliveries in done.items():
            self.sources.consumer(stream_id).ack(deliveries)
        return batch

    def _scaled(self, stream_id: str, delivery: Delivery[FrameRef]) -> FrameRef | None:
        """The frame scaled into the output, or None when it could not be (counted)."""
        ref = delivery.message
        try:
            return self._scale(ref)
        except FrameOverwrittenError:
            self.metrics.dropped.labels(stream_id, "overwritten").inc()
        except SegmentNotFoundError:
            self.metrics.dropped.labels(stream_id, "segment_gone").inc()
        except (FrameStoreError, ValueError) as e:
            self.metrics.dropped.labels(stream_id, "bad_frame").inc()
            self.sources.consumer(stream_id).reject(delivery, "bad_frame", str(e))
        return None

    def _scale(self, ref: FrameRef) -> FrameRef:
        mux = self.config.streammux
        source = self.reader.read(ref, copy=False)
        # Ingest stores frames as decoded (identity placement): these pixels are the source.
        height, width = source.shape[:2]
        box = Letterbox.fit(width, height, mux.width, mux.height, padding=mux.enable_padding)
        out = FrameRef()
        out.CopyFrom(ref)
        # The ref says what it now points at: the source size, the muxer's size, the placement.
        box.fill(out)
        if self.ring is not None:
            reservation = self.ring.reserve((mux.height, mux.width, 3))
            box.apply(source, reservation.array)
            self._still_current(ref)
            out.shm.CopyFrom(reservation.commit())
            out.pixel_format = PixelFormat.PIXEL_FORMAT_BGR24
        else:
            scaled: npt.NDArray[Any] = np.empty((mux.height, mux.width, 3), np.uint8)
            box.apply(source, scaled)
            self._still_current(ref)
            out.jpeg = encode_jpeg(scaled, self.settings.jpeg_quality)
            out.pixel_format = PixelFormat.PIXEL_FORMAT_JPEG
        return out

    def _still_current(self, ref: FrameRef) -> None:
        """A zero-copy source frame may have been overwritten while it was being scaled."""
        if not self.reader.is_current(ref):
            raise FrameOverwrittenError(ref.shm.segment, ref.shm.slot, ref.shm.generation, -1)

    def _check_threads(self) -> None:
        self.sources.check()
        if self.discovery.error is not None:
            raise RuntimeError(f"source discovery failed: {self.discovery.error}")

    def _last_batch_id(self) -> int:
        """Continue batch ids after a restart instead of starting at 0 again."""
        newest = self.bus.newest(self.publisher.stream, FrameBatch)
        return -1 if newest is None else int(newest.batch_id)


def main() -> None:
    sys.exit(run_service(Streammux, StreammuxSettings))


if __name__ == "__main__":
    main()
