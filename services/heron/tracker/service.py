"""The tracker service: FrameMetadata of inference in, the same with tracker ids out.

One `step()` applies the pipeline's stream events (a Started stream starts over, an ended
stream's tracks are dropped once its last frame is through), reads up to `read_count`
FrameMetadata (1 when enable-batch-process=0), updates each stream's tracker in frame order,
publishes one FrameMetadata per input to streams.metadata("tracker") and only then
acknowledges the input. Metadata that cannot be used goes to the input's dead-letter stream
with the reason: malformed (bad_metadata), of a stream the pipeline does not have
(unknown_stream) or numbered too far ahead of the stream (future_frame); none of them touches
the stream's state. Trackers that use pixels read them from the frame store; a frame whose
pixels are gone is tracked by overlap only and counted.
"""

from __future__ import annotations

import logging
import sys
import time

from google.protobuf.timestamp_pb2 import Timestamp
from prometheus_client import Counter, Gauge

from heron.core import streams
from heron.core.bus import Consumer, Delivery, Publisher
from heron.core.bus.admission import (
    AdmissionMetrics,
    KnownStreams,
    Order,
    Placement,
    RefusedError,
)
from heron.core.commands import added_streams
from heron.core.config.pipeline_file import load_pipeline
from heron.core.detections import Detections
from heron.core.plan.settings.tracker import TrackerSettings
from heron.core.runtime import (
    FlagCheck,
    Received,
    Rejection,
    Service,
    Stage,
    Work,
    run_service,
)
from heron.tracker.convert import BadMetadataError, from_metadata, to_object
from heron.tracker.pipeline import tracker_setup
from heron.tracker.pixels import FramePixels
from heron.tracker.state import Streams, StreamState
from heron.v1.detection_pb2 import DetectedObject, FrameMetadata, StageTimestamp
from heron.v1.stream_pb2 import StreamEvent

log = logging.getLogger(__name__)

STAGE = "tracker"
INPUT_STAGE = "inference"


class TrackerService(Service[TrackerSettings]):
    def start(self) -> None:
        s = self.settings
        self.ctx.check_bus()
        ready = self.ctx.readiness.add(FlagCheck("tracker configured"))
        pipeline, _ = load_pipeline(s.pipeline_config)
        setup = tracker_setup(pipeline, s.pipeline_config)
        for warning in setup.spec.warnings:
            log.warning("%s", warning)
        self.spec = setup.spec
        # The config's streams, and those ingest adds at run time (asked when a frame names one).
        self.known = KnownStreams(setup.streams.ids, lambda: added_streams(self.bus, s.pipeline))
        self.streams = Streams(setup.spec, setup.reset_mode, s.admission)
        self.read_count = s.read_count if setup.batch_process else 1
        size = (setup.spec.width, setup.spec.height)
        self.pixels = FramePixels(size) if setup.spec.uses_pixels else None
        self._metrics()
        self.bus = s.bus(self.ctx.metrics.registry, self.ctx.transport)
        name = s.member
        self.input: Consumer[FrameMetadata] = self.bus.consumer(
            streams.metadata(INPUT_STAGE, s.pipeline), FrameMetadata, s.group, name
        )
        self.events: Consumer[StreamEvent] = self.bus.consumer(
            streams.events(s.pipeline), StreamEvent, s.group, name
        )
        self.input.ensure_group()
        self.events.ensure_group()
        self.output: Publisher[FrameMetadata] = self.bus.publisher(
            streams.metadata(STAGE, s.pipeline), FrameMetadata
        )
        self.stage: Stage[FrameMetadata, Work[FrameMetadata]] = Stage(
            self.ctx,
            name=STAGE,
            output=self.output,
            take=self._take,
            handle=self._handle,
            # A full output stream is the only thing that holds work here: no backoff.
            retry_initial_s=s.retry_s,
            retry_max_s=s.retry_s,
        )
        ready.set(f"{self.spec.kind.value} tracker")
        log.info("tracking", extra={"tracker": self.spec.kind.value, "batch": self.read_count})

    def _metrics(self) -> None:
        registry = self.ctx.metrics.registry
        self.frames_total = Counter(
            "heron_tracker_frames_total",
            "Frames handled, by result (tracked, carried: detector skipped the frame, stale: "
            "behind the stream's last in-order frame, passed on untracked, dead_lettered).",
            ["result"],
            registry=registry,
        )
        self.stream_frames_total = Counter(
            "heron_tracker_stream_frames_total",
            "Frames passed on (tracked, carried or stale), by stream.",
            ["stream"],
            registry=registry,
        )
        self.pixels_missing_total = Counter(
            "heron_tracker_pixels_missing_total",
            "Frames a pixel tracker tracked by overlap only, by why (overwritten, missing, "
            "unreadable).",
            ["reason"],
            registry=registry,
        )
        self.admission_metrics = AdmissionMetrics(registry, STAGE)
        self.active_streams = Gauge(
            "heron_tracker_streams", "Streams with live tracker state.", registry=registry
        )

    # --- the loop -----------------------------------------------------------------------

    def step(self) -> None:
        self._apply_events()
        for stream_id in self.streams.expire(self.settings.eos_grace_s):
            log.info("dropped tracks of ended stream %r (its last frames never came)", stream_id)
        done = self.stage.step()
        if done is not None:
            self.frames_total.labels("dead_lettered").inc(done.dead_lettered)
            self.active_streams.set(len(self.streams))

    def drain(self) -> None:
        done = self.stage.drain()
        if done is not None:
            self.frames_total.labels("dead_lettered").inc(done.dead_lettered)

    def close(self) -> None:
        for name in ("pixels", "bus"):
            part = getattr(self, name, None)
            if part is not None:
                part.close()

    # --- events -------------------------------------------------------------------------

    def _apply_events(self) -> None:
        deliveries = self.events.read(count=64, block_ms=0)
        for d in deliveries:
            event = d.message
            kind = event.WhichOneof("event")
            if kind == "started":
                self.streams.started(event.stream_id)
            elif kind == "eos":
                self.streams.ended(event.stream_id, event.eos.frames)
        if deliveries:
            # In-memory effects only: nothing to publish before acknowledging.
            self.events.ack(deliveries)

    # --- one unit of work ---------------------------------------------------------------

    def _take(self) -> Work[FrameMetadata] | None:
        deliveries = self.input.read(count=self.read_count, block_ms=self.settings.read_block_ms)
        if not deliveries:
            return None
        return Work([Received(self.input, deliveries)])

    def _handle(self, work: Work[FrameMetadata]) -> None:
        started = Timestamp()
        started.GetCurrentTime()
        for d in work.inputs[0].deliveries:
            try:
                with self.ctx.metrics.track(STAGE, frame=d.message.frame):
                    work.out.append(self._track(d, started))
            except BadMetadataError as e:
                work.rejected.append(Rejection(self.input, d, "bad_metadata", str(e)))
            except RefusedError as e:
                self.admission_metrics.refused(e)
                work.rejected.append(Rejection(self.input, d, e.reason.value, str(e)))

    def _track(self, d: Delivery[FrameMetadata], started: Timestamp) -> FrameMetadata:
        meta = d.message
        detections = from_metadata(meta)
        stream_id, number = meta.frame.stream_id, meta.frame.frame_number
        self.known.check(stream_id)
        state = self.streams.get(stream_id)
        # Judged by when the frame was produced, so a backlog read in a burst is no jump.
        at_ns = d.published_ns if d.published_ns is not None else time.time_ns()
        placed = state.order.place(number, at_ns)
        if placed.order is Order.AHEAD:
            raise placed.refusal(stream_id)  # before any state changed: nothing to undo
        if placed.order is Order.RESYNC:
            state = self._resync(stream_id, placed, at_ns)
        out = FrameMetadata()
        out.CopyFrom(meta)
        del out.objects[:]
        if placed.order in (Order.LATE, Order.BEHIND):
            # A redelivery, a reordering, or frames behind a stray that got in first: the
            # tracker has moved past them; pass them on untracked.
            out.objects.extend(meta.objects)
            self.frames_total.labels("stale").inc()
        else:
            out.objects.extend(self._objects(state, meta, detections))
        ended = Timestamp()
        ended.GetCurrentTime()
        out.stages.append(StageTimestamp(stage=STAGE, start=started, end=ended))
        self.streams.after_frame(stream_id, number)
        self.stream_frames_total.labels(stream_id).inc()
        return out

    def _resync(self, stream_id: str, placed: Placement, at_ns: int) -> StreamState:
        """Frames kept coming from elsewhere: follow them. Numbering that began again at 0 is a
        restart without its event (tracks end, ids as tracking-id-reset-mode says); otherwise
        the targets are kept and go on with the frames."""
        self.admission_metrics.resynced(placed)
        log.warning(
            "stream %r moved from frame %s to %d (%s); following it",
            stream_id,
            placed.last,
            placed.number,
            "numbering began again" if placed.restarted else "a jump",
        )
        if not placed.restarted:
            return self.streams.get(stream_id)
        self.streams.started(stream_id)
        state = self.streams.get(stream_id)
        state.order.place(placed.number, at_ns)
        return state

    def _objects(
        self, state: StreamState, meta: FrameMetadata, detections: Detections | None
    ) -> list[DetectedObject]:
        frame = None
        if self.pixels is not None:
            frame, why = self.pixels.read(meta.frame)
            if why:
                self.pixels_missing_total.labels(why).inc()
        tracked = state.tracker.update(detections, frame)
        state.frames += 1
        objects = []
        for t in tracked:
            if t.detection is not None:
                template = meta.objects[t.detection]
            elif t.track_id in state.objects:
                template = state.objects[t.track_id][0]
            else:
                continue  # carried before any detector object was seen: nothing to label it
            obj = to_object(template, t)
            state.objects[t.track_id] = (template, state.frames)
            objects.append(obj)
        self._forget_old(state)
        self.frames_total.labels("carried" if detections is None else "tracked").inc()
        return objects

    def _forget_old(self, state: StreamState) -> None:
        targets = self.spec.params.targets
        horizon = targets.max_shadow_tracking_age + 1
        old = [i for i, (_, seen) in state.objects.items() if state.frames - seen > horizon]
        for i in old:
            del state.objects[i]


def main(argv: list[str] | None = None) -> int:
    return run_service(TrackerService, TrackerSettings, argv)


__all__ = ["TrackerService", "main"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
