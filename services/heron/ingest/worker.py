"""One thread per stream: pull frames from its source, store the pixels, publish references.

The worker owns the stream's state machine and reports every move as a metric and, where the
move matters to consumers, as a StreamEvent: Started when frames begin to flow (again),
Reconnecting with the attempt and the backoff, EndOfStream with the frame count, Error.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from fractions import Fraction

from google.protobuf.timestamp_pb2 import Timestamp

from heron.core.backoff import Backoff
from heron.core.bus import Publisher
from heron.core.plan.settings.ingest import ReconnectSettings
from heron.core.runtime import FrameKey, ServiceMetrics
from heron.ingest import events
from heron.ingest.backpressure import LagGate
from heron.ingest.decoding import DecodedFrame
from heron.ingest.errors import SourceFailedError, SourceUnavailableError
from heron.ingest.metrics import FpsMeter, IngestMetrics
from heron.ingest.resume import Resume
from heron.ingest.sources import Source
from heron.ingest.state import StreamState, StreamStateMachine
from heron.ingest.store import PixelStore
from heron.v1.frame_pb2 import FrameRef
from heron.v1.stream_pb2 import StreamEvent

log = logging.getLogger(__name__)

STAGE = "ingest"


@dataclass
class WorkerOutputs:
    """Where a worker's results go; shared by all workers except `frames` and `store`."""

    frames: Publisher[FrameRef]
    events: Publisher[StreamEvent]
    store: PixelStore
    metrics: IngestMetrics
    service_metrics: ServiceMetrics
    gate: LagGate | None = None  # every_frame only


class StreamWorker(threading.Thread):
    def __init__(
        self,
        source: Source,
        outputs: WorkerOutputs,
        reconnect: ReconnectSettings,
        *,
        max_attempts: int = -1,
        stop: threading.Event | None = None,
        read_timeout_s: float = 10.0,
        resume: Resume | None = None,
    ) -> None:
        self.spec = source.spec
        super().__init__(name=f"ingest-{self.spec.stream_id}", daemon=True)
        self.source = source
        self.out = outputs
        self.max_attempts = max_attempts
        # This worker's own: RemoveSource stops one stream; the service stops each at shutdown.
        self.stop_event = stop if stop is not None else threading.Event()
        self.read_timeout_s = read_timeout_s  # the longest one read blocks: bounds a stop's wait
        self.machine = StreamStateMachine(self.spec.stream_id)
        # Counts the failed attempts since frames last flowed: rtsp-reconnect-attempts'
        # `max_attempts` is checked against it, and the wait grows with it.
        self._backoff = Backoff(reconnect.initial_s, reconnect.max_s)
        self._fps = FpsMeter(outputs.metrics.fps.labels(self.spec.stream_id))
        outputs.metrics.start_stream(self.spec.stream_id)
        self.decoded = 0  # frames out of the decoder, over every pass and connection
        resume = resume or Resume()
        # The next frame_number: frame references published, by this worker and, when it
        # resumes a file source (heron.ingest.resume), by its killed predecessor before it.
        self.published = resume.next_frame
        self._pass_over = resume.next_frame  # kept frames of the file before the resume point
        self._captured = dict(resume.captured)  # frames published again keep their time
        # Frames decoded and kept (not a drop-frame-interval skip) that never got published:
        # only a stop while waiting for backpressure room loses one. Ingest drops nothing else
        # at publish: latest_frame_wins trims happen on the bus afterwards (counted there).
        self.dropped = 0
        self.reconnects = 0
        self.failure: str | None = None
        self.last_reason: str | None = None  # why it last reconnected, for status reports
        self.since = time.time()  # when it entered its current state (wall clock)
        self.crash: BaseException | None = None  # not a source problem: a bug or a dead bus
        self.done = threading.Event()
        self._set_state_metric(StreamState.CONNECTING)

    @property
    def stream_id(self) -> str:
        return self.spec.stream_id

    @property
    def finished(self) -> bool:
        """The stream ended (EOS or error) or its thread has returned (stopped)."""
        return self.machine.finished or self.done.is_set()

    @property
    def fps(self) -> float:
        """Frames published per second, recently."""
        return self._fps.current()

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> None:
        try:
            self._run()
        except Exception as e:  # a bug or a dead bus: the service restarts (see IngestService)
            log.exception("stream %s failed", self.stream_id)
            self.crash = e
            self._fail(f"{type(e).__name__}: {e}")
        finally:
            self._fps.idle()  # stopped or ended: no stale rate
            self.done.set()

    def _run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self._play()
            except SourceUnavailableError as e:
                if self.machine.state is StreamState.PLAYING:
                    self._backoff.reset()  # frames flowed since the last failure: count anew
                if not self._reconnect(str(e)):
                    return
                continue
            except SourceFailedError as e:
                self._fail(str(e))
                return
            if not self.stop_event.is_set():
                self._end()
            return

    def _play(self) -> None:
        """Publish frames until the source ends (or a stop); raises what the source raises."""
        interval = max(self.spec.drop_frame_interval, 1)
        with contextlib.closing(self.source.frames()) as frames:
            for frame in frames:
                if self.machine.state is not StreamState.PLAYING:
                    self._to(StreamState.PLAYING)
                    self._emit(events.started(self.spec))
                    log.info("stream %s playing", self.stream_id)
                self.out.metrics.decoded.labels(self.stream_id).inc()
                if frame.source_fps is not None:
                    self.out.metrics.source_fps.labels(self.stream_id).set(frame.source_fps)
                self.decoded += 1
                # drop-frame-interval N keeps frames 0, N, 2N, ... as nvv4l2decoder does.
                skip = (self.decoded - 1) % interval
                passed = not skip and self._pass_over > 0
                # The exemplar names the number the frame is published under; a skipped one has
                # none, nor has one a predecessor published and the pipeline finished.
                key = None if skip or passed else FrameKey(self.stream_id, self.published)
                self.out.service_metrics.observe(f"{STAGE}.decode", frame.decode_s, frame=key)
                if skip:
                    self.out.metrics.skipped.labels(self.stream_id).inc()
                    continue
                if passed:
                    self._pass_over -= 1
                    continue
                self._publish(frame)
                if self.stop_event.is_set():
                    break

    def _publish(self, frame: DecodedFrame) -> None:
        if self.out.gate is not None:
            waited = self.out.gate.wait()
            if waited:
                self.out.metrics.backpressure_wait.labels(self.stream_id).inc(waited)
            if self.stop_event.is_set():
                self.dropped += 1
                return
        started = time.perf_counter()
        ref = self._ref(frame)
        ref = self.out.store.put(frame.image, ref)
        self.out.frames.publish(ref)
        self.published += 1
        self.out.metrics.published.labels(self.stream_id).inc()
        self.out.service_metrics.observe(
            f"{STAGE}.publish", time.perf_counter() - started, frame=ref
        )
        self._fps.tick()

    def _ref(self, frame: DecodedFrame) -> FrameRef:
        # A frame published again is the same frame: downstream tells a repeat by its time.
        capture = self._captured.pop(self.published, None)
        if capture is None:
            capture = Timestamp()
            capture.GetCurrentTime()
        height, width = frame.image.shape[:2]
        ref = FrameRef(
            stream_id=self.stream_id,
            frame_number=self.published,
            capture_time=capture,
            width=width,
            height=height,
            source_id=self.spec.source_id,
        )
        if frame.pts is not None:
            ref.pts = frame.pts
        if isinstance(frame.time_base, Fraction):
            ref.time_base_num = frame.time_base.numerator
            ref.time_base_den = frame.time_base.denominator
        return ref

    def _reconnect(self, reason: str) -> bool:
        """Wait out the backoff before the next try; False when giving up or stopping."""
        self._fps.idle()
        attempt = self._backoff.failures + 1
        if 0 <= self.max_attempts < attempt:
            self._fail(f"gave up after {self.max_attempts} reconnect attempts: {reason}")
            return False
        delay = self._backoff.next()
        self.reconnects += 1
        self.last_reason = reason
        self._to(StreamState.RECONNECTING)
        self.out.metrics.reconnects.labels(self.stream_id).inc()
        self.out.metrics.errors.labels(self.stream_id, "false").inc()
        self._emit(events.reconnecting(self.stream_id, attempt, delay, reason))
        log.warning(
            "stream %s: %s; reconnect attempt %d in %.2f s", self.stream_id, reason, attempt, delay
        )
        if self.stop_event.wait(delay):
            return False
        self.source.reset()
        return True

    def _end(self) -> None:
        self._fps.idle()
        self._to(StreamState.EOS)
        self._emit(events.end_of_stream(self.stream_id, self.published))
        log.info("stream %s ended after %d frames", self.stream_id, self.published)

    def _fail(self, message: str) -> None:
        self._fps.idle()
        self.failure = message
        if not self.machine.finished:
            self._to(StreamState.ERROR)
        self.out.metrics.errors.labels(self.stream_id, "true").inc()
        log.error("stream %s: %s", self.stream_id, message)
        with contextlib.suppress(Exception):  # the bus may be what failed
            self._emit(events.error(self.stream_id, message, fatal=True))

    def _to(self, state: StreamState) -> None:
        if self.machine.to(state) is not state:  # another reconnect attempt is no new state
            self.since = time.time()
        self._set_state_metric(state)

    def _set_state_metric(self, state: StreamState) -> None:
        self.out.metrics.state.labels(self.stream_id).state(state.value)

    def _emit(self, event: StreamEvent) -> None:
        self.out.events.publish(event)
