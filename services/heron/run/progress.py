"""What `heron run` learns from the bus: frames leaving the last stage, and sources ending.

It reads the last stage's metadata stream and the pipeline's event stream with consumer groups
of its own (acknowledging at once, so it never holds the keep-unread streams back). The run is
complete when every source has ended (EOS or a fatal error), the last stage has published
metadata for every frame ingest published, and every other consumer group on that stream (the
overlay, which writes the sinks) has read and acknowledged all of it.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field

import redis
from prometheus_client import CollectorRegistry

from heron.core import streams
from heron.core.bus import BackoffSettings, Bus, BusSettings, RedisBus
from heron.v1.detection_pb2 import FrameMetadata
from heron.v1.stream_pb2 import StreamEvent

log = logging.getLogger(__name__)

GROUP = "heron-run"
# The watcher gives up on Redis after a moment, so the run's loop (which restarts a private
# Redis, and decides when one that stays away ends the run) keeps control.
WATCHER_BACKOFF = BackoffSettings(initial_s=0.05, max_s=0.5, give_up_after_s=1.0)


@dataclass
class StreamProgress:
    frames_out: set[int] = field(default_factory=set)  # frame numbers the last stage published
    dropped: dict[int, str] = field(default_factory=dict)  # frames the overlay could not deliver
    # Each message of a frame on the last stage's stream is one chance for the overlay to draw
    # it, each `dropped` event one it lost: a frame whose pixels died with a killed ingest is
    # dropped, then published again by its successor (heron.ingest.resume) and drawn.
    copies: Counter[int] = field(default_factory=Counter)
    drops: Counter[int] = field(default_factory=Counter)
    ended: bool = False
    frames_in: int | None = None  # frames ingest published, from the EOS event
    error: str | None = None
    latencies_s: list[float] = field(default_factory=list)  # capture -> last stage published
    first_seen: float | None = None  # time.monotonic() of its first and last frame out
    last_seen: float | None = None
    objects: Counter[str] = field(default_factory=Counter)  # detections by label, frames out
    frames_with_objects: int = 0
    track_ids: set[int] = field(default_factory=set)
    unreadable: str | None = None  # why the source cannot be read now (ingest reconnects)
    attempts: int = 0  # reconnect attempts since the source last played

    @property
    def delivered(self) -> int:
        """Frames out that ingest sent and the overlay did not drop, or sent again more often
        than dropped: numbers past the source's count (a stray message) are not frames of this
        source, and must not make up for one that is missing."""
        out = {
            n for n in self.frames_out if n not in self.dropped or self.copies[n] > self.drops[n]
        }
        if self.frames_in is None:
            return len(out)
        return sum(1 for n in out if n < self.frames_in)

    @property
    def lost(self) -> int:
        """Frames ingest sent that never left the last stage (0 until the source ended)."""
        return 0 if self.frames_in is None else self.frames_in - self.delivered

    @property
    def complete(self) -> bool:
        return self.ended and self.lost == 0


@dataclass(frozen=True)
class FrameSeen:
    stream: str
    frame_number: int
    latency_s: float | None


class BusWatcher:
    """Reads events and last-stage metadata; `poll()` returns the frames seen since last time."""

    def __init__(self, bus: Bus, pipeline: str, final_stage: str, expected: list[str]) -> None:
        self.bus = bus
        self.meta_stream = streams.metadata(final_stage, pipeline)
        self.events = self.bus.consumer(streams.events(pipeline), StreamEvent, GROUP, "run")
        self.meta = self.bus.consumer(self.meta_stream, FrameMetadata, GROUP, "run")
        self.events.ensure_group()
        self.meta.ensure_group()
        self.progress: dict[str, StreamProgress] = {s: StreamProgress() for s in expected}
        self.strays: set[str] = set()  # stream ids seen that the pipeline does not have

    @classmethod
    def on_redis(
        cls, redis_url: str, pipeline: str, final_stage: str, expected: list[str]
    ) -> BusWatcher:
        settings = BusSettings(backoff=WATCHER_BACKOFF)
        bus = RedisBus.from_url(redis_url, settings, registry=CollectorRegistry())
        return cls(bus, pipeline, final_stage, expected)

    def poll(self, block_ms: int = 200) -> list[FrameSeen]:
        seen: list[FrameSeen] = []
        events = self.events.read(block_ms=0)
        for e in events:
            self._event(e.message)
        if events:
            self.events.ack(events)
        deliveries = self.meta.read(count=512, block_ms=block_ms)
        for d in deliveries:
            if (frame := self._frame(d.message, d.published_ns, d.deliveries)) is not None:
                seen.append(frame)
        if deliveries:
            self.meta.ack(deliveries)
        return seen

    def _stream(self, stream_id: str) -> StreamProgress | None:
        """The progress of one of the pipeline's streams; None (logged once) for any other:
        a stray message must not count as a frame, nor hold the run open forever."""
        p = self.progress.get(stream_id)
        if p is None and stream_id not in self.strays:
            self.strays.add(stream_id)
            log.warning("stream %r is not one of the pipeline's streams: not counted", stream_id)
        return p

    def _event(self, event: StreamEvent) -> None:
        if event.WhichOneof("event") == "started" and event.stream_id not in self.progress:
            # A source added at run time (heron.v1.Pipeline/AddSource): ingest says it started.
            self.progress[event.stream_id] = StreamProgress()
            self.strays.discard(event.stream_id)
            log.info("%s: added at run time", event.stream_id)
        p = self._stream(event.stream_id)
        if p is None:
            return
        kind = event.WhichOneof("event")
        if kind == "eos":
            p.ended, p.frames_in = True, int(event.eos.frames)
            log.info("%s: end of stream after %d frames", event.stream_id, p.frames_in)
        elif kind == "error" and event.error.fatal:
            p.ended, p.error = True, event.error.message
            log.warning("%s: source failed: %s", event.stream_id, event.error.message)
        elif kind == "started":
            p.ended = False
            if p.attempts:
                log.warning("%s: playing after %d attempt(s)", event.stream_id, p.attempts)
            p.unreadable, p.attempts = None, 0
        elif kind == "reconnecting":
            self._reconnecting(event.stream_id, p, event.reconnecting)
        elif kind == "dropped":
            d = event.dropped
            p.dropped[int(d.frame_number)] = d.reason
            p.drops[int(d.frame_number)] += 1
            log.warning(
                "%s: frame %d will be missing from the sinks (%s: %s)",
                event.stream_id, d.frame_number, d.stage, d.reason,
            )  # fmt: skip

    @staticmethod
    def _reconnecting(stream: str, p: StreamProgress, r: StreamEvent.Reconnecting) -> None:
        # Said on the terminal when the reason changes and at attempts 1, 2, 4, 8, ...: a camera
        # that stays away (rtsp-reconnect-attempts=-1 retries for ever) is one line a while, not
        # a line a second, and never silent.
        new_reason = r.reason != p.unreadable
        p.unreadable, p.attempts = r.reason, int(r.attempt)
        if new_reason or p.attempts & (p.attempts - 1) == 0:
            log.warning(
                "%s: cannot read the source (attempt %d, next in %.1f s): %s",
                stream, p.attempts, r.backoff_seconds, r.reason,
            )  # fmt: skip

    def _frame(
        self, meta: FrameMetadata, published_ns: int | None, deliveries: int = 1
    ) -> FrameSeen | None:
        ref = meta.frame
        p = self._stream(ref.stream_id)
        if p is None:
            return None
        if int(ref.frame_number) not in p.frames_out:  # a redelivered frame counts once
            _count_objects(p, meta)
        p.frames_out.add(int(ref.frame_number))
        if deliveries == 1:  # the same entry given to this watcher again is no new copy
            p.copies[int(ref.frame_number)] += 1
        now = time.monotonic()
        p.first_seen = now if p.first_seen is None else p.first_seen
        p.last_seen = now
        latency: float | None = None
        if published_ns is not None and ref.HasField("capture_time"):
            latency = (published_ns - ref.capture_time.ToNanoseconds()) / 1e9
            p.latencies_s.append(latency)
        return FrameSeen(ref.stream_id, int(ref.frame_number), latency)

    @property
    def sources_ended(self) -> bool:
        return bool(self.progress) and all(p.ended for p in self.progress.values())

    @property
    def last_stage_done(self) -> bool:
        return self.sources_ended and all(p.complete for p in self.progress.values())

    def downstream_drained(self, expected_groups: int) -> bool:
        """The `expected_groups` other groups on the last stage's stream (the overlay) exist and
        have read and acknowledged everything (False while Redis does not answer). Judged by
        entry ids: XINFO's `lag` is nil or wrong after a deleted entry or a Redis restarted
        from its append-only file, and an unknown lag once read as "caught up"."""
        try:
            groups = self.bus.groups_caught_up(self.meta_stream.key)
        except (redis.ConnectionError, redis.TimeoutError):
            return False
        others = [done for name, done in groups.items() if name != GROUP]
        return len(others) >= expected_groups and all(others)

    def close(self) -> None:
        self.bus.close()


def _count_objects(p: StreamProgress, meta: FrameMetadata) -> None:
    """What the last stage found in one frame: labels counted, tracks collected (0: none)."""
    for obj in meta.objects:
        p.objects[obj.label or f"class {obj.class_id}"] += 1
        if obj.tracker_id:
            p.track_ids.add(int(obj.tracker_id))
    p.frames_with_objects += bool(meta.objects)
