"""The overlay service: FrameMetadata in from the bus, pixels from the frame store, boxes and
labels drawn, frames tiled, every enabled sink written, and only then the metadata acknowledged.

One `step()` reads up to `read_count` metadata messages (one per source by default: a muxer
batch) and splits them into composites of one frame per source. For each composite the pixels
are read; a frame whose ring slot was already reused is counted (`overwritten`), announced on
the pipeline's event stream (`dropped`: it will be missing from the sinks) and skipped
with a warning, a reference that can never be read is dead-lettered. A frame whose ring went
with a killed ingest is left pending instead (`waiting`): the restarted ingest publishes it
again (heron.ingest.resume), and that copy is drawn. A frame delivered again (an upstream
stage redid it after a restart) is acknowledged and counted (`duplicate`), not drawn twice.
Video sinks get the tiled
canvas (or each frame, without a tiler; or their own source's frame with link-to-demux);
broker sinks get the metadata of every frame, pixels or not. Every sink commits what it took
before the metadata is acknowledged: a file sink's frames are then on disk, and an overlay
started again (its consumer group already existed) resumes the recording.

A live sink that fails (RTSP, broker) is counted and logged and the others go on: live video is
lossy by design. A recording that cannot be written, or a [sinkN] the overlay cannot run, is a
FatalError: the process exits with EXIT_FATAL and `heron run` stops with the reason.
"""

from __future__ import annotations

import logging
import sys
import time

from heron.core import streams
from heron.core.bus import Consumer, Delivery, Publisher
from heron.core.config.pipeline_file import load_pipeline
from heron.core.detections import Detections, DetectionsError
from heron.core.framestore import (
    FrameOverwrittenError,
    FrameReader,
    FrameStoreError,
    Letterbox,
    SegmentNotFoundError,
)
from heron.core.plan.settings.overlay import OverlaySettings
from heron.core.runtime import FatalError, Service, oldest_frame, run_service
from heron.overlay.compose import Compositor, Loaded, composites
from heron.overlay.dedup import RecentFrames
from heron.overlay.metrics import OverlayMetrics
from heron.overlay.osd import OnScreenDisplay, OsdStyle
from heron.overlay.sinks.base import Image, RecordingError, SinkConfigError, SinkError
from heron.overlay.sinks.broker.sink import BrokerSink
from heron.overlay.sinks.build import BoundSink, SinkOptions, build_sinks
from heron.overlay.sinks.rtsp_metrics import RtspMetrics
from heron.overlay.tiler import Tiler
from heron.v1.detection_pb2 import FrameMetadata
from heron.v1.stream_pb2 import StreamEvent

log = logging.getLogger(__name__)

STAGE = "overlay"
PRUNE_EVERY_S = 5.0  # unmap rings of writers that went away


class OverlayService(Service[OverlaySettings]):
    def start(self) -> None:
        s = self.settings
        self.ctx.check_bus()
        pipeline, _ = load_pipeline(s.pipeline_config)
        registry = self.ctx.metrics.registry
        self.metrics = OverlayMetrics(registry)
        tiler = Tiler.from_config(pipeline.tiled_display) if pipeline.tiled_display.enable else None
        self.compositor = Compositor(OnScreenDisplay(OsdStyle.from_pipeline(pipeline)), tiler)
        self.stream = streams.metadata(s.metadata_stage(pipeline), s.pipeline)
        self.count = s.read_count or max(1, sum(src.enable for src in pipeline.sources.values()))
        self.bus = s.bus(registry, self.ctx.transport)
        self.consumer: Consumer[FrameMetadata] = self.bus.consumer(
            self.stream, FrameMetadata, s.group, s.member
        )
        # The group outlives the process: finding it made already means this is a restart.
        resume = not self.consumer.ensure_group()
        # Without a tiler the frames' own size is known only with the first one.
        size = (tiler.width, tiler.height) if tiler else None
        options = SinkOptions(
            s.fps, size, s.encoder_preset, s.rtsp_address, RtspMetrics(registry), resume
        )
        try:
            self.sinks: list[BoundSink] = build_sinks(pipeline, options)
        except (SinkConfigError, SinkError) as e:
            raise FatalError(str(e)) from e
        self.events: Publisher[StreamEvent] = self.bus.publisher(
            streams.events(s.pipeline), StreamEvent
        )
        self.reader = FrameReader()
        self.recent = RecentFrames()
        self.waiting: set[str] = set()  # this step's deliveries left pending for a new copy
        self.writers_gone: set[str] = set()  # segments whose writer died, said once each
        self.sent: dict[str, int] = {}  # broker sink name -> messages counted so far
        self.pruned_at = time.monotonic()
        log.info(
            "overlay reading %s",
            self.stream.key,
            extra={"sinks": [f"{b.sink.name}:{b.sink.kind}" for b in self.sinks]},
        )

    def step(self) -> None:
        read = self.consumer.read(count=self.count, block_ms=self.settings.read_block_ms)
        deliveries: list[Delivery[FrameMetadata]] = []
        repeats: list[Delivery[FrameMetadata]] = []
        for d in self._admitted(read):
            (deliveries if self.recent.first_time(d.message) else repeats).append(d)
        for d in repeats:  # an upstream stage redid the frame after a restart: drawn already
            self.metrics.frames.labels(d.message.frame.stream_id, "duplicate").inc()
        if repeats:
            log.info("%d frame(s) delivered again (an upstream stage redid them): not drawn twice",
                     len(repeats))  # fmt: skip
            self.consumer.ack(repeats)
        for group in composites([d.message for d in deliveries]):
            batch = [deliveries[i] for i in group]
            self.waiting.clear()
            self._composite(batch)
            self._commit()
            done = [d for d in batch if d.id not in self.waiting]
            self.consumer.ack(done)  # after every sink took the frame for good
            self.metrics.reached_sinks(d.message.frame for d in done)
        if time.monotonic() - self.pruned_at > PRUNE_EVERY_S:
            self.reader.prune()
            self.pruned_at = time.monotonic()

    def _admitted(self, read: list[Delivery[FrameMetadata]]) -> list[Delivery[FrameMetadata]]:
        """The deliveries whose boxes can be drawn and sent; the others (NaN, negative size)
        are dead-lettered and acknowledged, so no sink ever sees them."""
        good: list[Delivery[FrameMetadata]] = []
        for d in read:
            ref = d.message.frame
            try:
                Detections.from_proto(d.message)
            except DetectionsError as e:
                self.metrics.frames.labels(ref.stream_id, "dead_lettered").inc()
                self._dead_letter(d, "bad_metadata", f"stream {ref.stream_id!r} frame "
                                  f"{ref.frame_number}: {e}")  # fmt: skip
                continue
            good.append(d)
        return good

    def close(self) -> None:
        failed: list[str] = []
        for bound in getattr(self, "sinks", []):
            try:
                bound.sink.close()  # the file sink joins its recording here: the MP4 plays
            except Exception as e:
                log.exception("closing %s failed", bound.sink.name)
                failed.append(f"{bound.sink.name}: {e}")
        for name in ("reader", "bus"):
            part = getattr(self, name, None)
            if part is not None:
                part.close()
        if failed:  # a recording left unfinished must not end the process with exit 0
            raise RecordingError("; ".join(failed))

    # --- one composite ---------------------------------------------------------------------

    def _composite(self, batch: list[Delivery[FrameMetadata]]) -> None:
        loaded: list[Loaded] = []
        if any(b.pixels for b in self.sinks):  # broker-only overlays never touch pixels
            named = oldest_frame(d.message.frame for d in batch)
            with self.ctx.metrics.track(f"{STAGE}.read", frames=len(batch), frame=named):
                loaded = [f for d in batch if (f := self._load(d)) is not None]
        named = oldest_frame(f.meta.frame for f in loaded)
        with self.ctx.metrics.track(f"{STAGE}.draw", frames=len(loaded), frame=named):
            canvas, loaded = self._draw(loaded)
        metas = [d.message for d in batch if d.id not in self.waiting]
        for bound in self.sinks:
            if not bound.pixels:
                self._write(bound, None, metas)
            elif bound.source_id is None and canvas is not None:
                self._write(bound, canvas, [f.meta for f in loaded])
            else:
                for f in loaded:
                    if bound.source_id in (None, f.meta.frame.source_id):
                        self._write(bound, f.image, [f.meta])

    def _commit(self) -> None:
        for bound in self.sinks:
            try:
                bound.sink.commit()
            except RecordingError as e:
                raise FatalError(f"{bound.sink.name} ({bound.sink.kind}): {e}") from e

    def _draw(self, loaded: list[Loaded]) -> tuple[Image | None, list[Loaded]]:
        """The tiled canvas (None without a tiler) and the frames, each drawn alone when a
        sink takes single frames (no tiler, or link-to-demux)."""
        tiler = self.compositor.tiler
        video = [b for b in self.sinks if b.pixels]
        canvas = None
        if tiler is not None and loaded and any(b.source_id is None for b in video):
            demuxed = any(b.source_id is not None for b in video)
            # link-to-demux sinks show their source alone: keep undrawn copies for them.
            spare = [f.image.copy() for f in loaded] if demuxed else None
            canvas, untiled = self.compositor.tile(loaded)
            gone = {id(f) for f in untiled}
            for f in loaded:
                result = "no_tile" if id(f) in gone else "drawn"
                self.metrics.frames.labels(f.meta.frame.stream_id, result).inc()
            if spare is None:
                return canvas, loaded
            loaded = [Loaded(f.meta, img) for f, img in zip(loaded, spare, strict=True)]
        elif video:
            for f in loaded:
                self.metrics.frames.labels(f.meta.frame.stream_id, "drawn").inc()
        if video:
            for f in loaded:
                self.compositor.draw(f)
        return canvas, loaded

    def _write(self, bound: BoundSink, frame: Image | None, metas: list[FrameMetadata]) -> None:
        sink = bound.sink
        started = time.perf_counter()
        try:
            sink.write(frame, metas)
        except RecordingError as e:
            self.metrics.sink_errors.labels(sink.name, sink.kind).inc()
            raise FatalError(f"{sink.name} ({sink.kind}): {e}") from e
        except SinkError as e:
            self.metrics.sink_errors.labels(sink.name, sink.kind).inc()
            log.error("%s (%s) failed: %s", sink.name, sink.kind, e)
            return
        self.metrics.sink_seconds.labels(sink.name, sink.kind).observe(
            time.perf_counter() - started
        )
        self.metrics.sink_frames.labels(sink.name, sink.kind).inc()
        if isinstance(sink, BrokerSink):
            before = self.sent.get(sink.name, 0)
            self.sent[sink.name] = sink.messages
            self.metrics.broker_messages.labels(sink.name).inc(sink.messages - before)

    def _load(self, delivery: Delivery[FrameMetadata]) -> Loaded | None:
        loaded = self._read(delivery)
        if loaded is None:  # not drawn: a later copy of it may be (heron.overlay.dedup)
            self.recent.forget(delivery.message)
        return loaded

    def _read(self, delivery: Delivery[FrameMetadata]) -> Loaded | None:
        meta = delivery.message
        ref = meta.frame
        try:
            image = self.reader.read(ref)
            Letterbox.from_proto(ref)  # boxes are mapped with it: a bad placement is a bad ref
        except SegmentNotFoundError as e:
            if delivery.deliveries >= self.settings.consumer.max_deliveries:
                log.warning(
                    "stream %r frame %d: gave up waiting for a copy after %d deliveries",
                    ref.stream_id, ref.frame_number, delivery.deliveries,
                )  # fmt: skip
                self._bad_frame(delivery, e)  # its writer's successor never sent it
            else:
                self._wait_for_copy(delivery)
            return None
        except FrameOverwrittenError as e:
            self.metrics.frames.labels(ref.stream_id, "overwritten").inc()
            self._dropped(meta, "overwritten")
            log.warning(
                "stream %r frame %d: pixels overwritten before the overlay read them (%s); "
                "skipped -- give the frame ring more slots",
                ref.stream_id, ref.frame_number, e,
            )  # fmt: skip
            return None
        except (FrameStoreError, ValueError) as e:
            self._bad_frame(delivery, e)
            return None
        return Loaded(meta, image)

    def _bad_frame(self, delivery: Delivery[FrameMetadata], error: Exception) -> None:
        ref = delivery.message.frame
        self.metrics.frames.labels(ref.stream_id, "dead_lettered").inc()
        self._dead_letter(delivery, "bad_frame", f"stream {ref.stream_id!r} frame "
                          f"{ref.frame_number}: {error}")  # fmt: skip

    def _wait_for_copy(self, delivery: Delivery[FrameMetadata]) -> None:
        """The frame's ring went with its writer: an ingest that was killed. Its successor
        publishes again, with pixels, every frame the pipeline has not finished
        (heron.ingest.resume), so this one is left pending: the copy is drawn, and this
        delivery, given back after consumer.min_idle_ms, is then a duplicate. Only its last
        delivery (consumer.max_deliveries) is dead-lettered when no copy came."""
        ref = delivery.message.frame
        self.waiting.add(delivery.id)
        self.metrics.frames.labels(ref.stream_id, "waiting").inc()
        if ref.shm.segment not in self.writers_gone:
            self.writers_gone.add(ref.shm.segment)
            log.warning(
                "stream %r: the ring %s of frame %d is gone with its writer; waiting for the "
                "frames to be published again", ref.stream_id, ref.shm.segment, ref.frame_number,
            )  # fmt: skip

    def _dead_letter(self, delivery: Delivery[FrameMetadata], reason: str, detail: str) -> None:
        """Dead-letter and acknowledge now: the frame can never be drawn, whatever the sinks do."""
        self.consumer.reject(delivery, reason, detail)
        self._dropped(delivery.message, reason)

    def _dropped(self, meta: FrameMetadata, reason: str) -> None:
        """Tell the pipeline a frame will be missing from the sinks: it left the last stage, so
        without this event `heron run` would count it as delivered."""
        event = StreamEvent(
            stream_id=meta.frame.stream_id,
            dropped=StreamEvent.FrameDropped(
                stage=STAGE, frame_number=meta.frame.frame_number, reason=reason
            ),
        )
        event.time.GetCurrentTime()
        self.events.publish(event)


def main(argv: list[str] | None = None) -> int:
    return run_service(OverlayService, OverlaySettings, argv)


__all__ = ["OverlayService", "main"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
