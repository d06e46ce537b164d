"""Admission checks where a message enters a stage: is it one the stage should act on?

Three checks, each refusing with a reason that starts the dead letter's `reason` text:

- `unknown_stream`: the frame names a stream that is not the pipeline's: not in the config, nor
  added at run time (`KnownStreams`).
- `bad_batch`: a muxer batch that is empty, holds more frames than the muxer's batch, or is not
  at the muxer's size (`BatchShape`).
- `future_frame`: a frame number too far ahead of the stream's last in-order frame
  (`FrameOrder`).

`FrameOrder` is the one with state, and the rule that matters most is that no single message can
move it: a frame out of line (far ahead or far behind) is refused or passed over without
touching the stream's position. Only `resync_after` frames in a row that agree with each other
(same side, strictly increasing, no in-order frame between them) move the stream there, so a
source that really jumped or began numbering again is followed after a bounded number of frames,
and one bogus frame that did get in (the first one a stage saw) is left behind just as quickly.
See docs/bus.md, "Admission at a stage's entry".
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel, ConfigDict, Field

from heron.core.config.models import Pipeline

_NS = 1_000_000_000


class AdmissionSettings(BaseModel):
    """How far a stream's frame numbers may move before a frame is out of line."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_frame_gap: int = Field(
        300,
        ge=1,
        description="Frames a stream may skip at once, however close in time: latest-frame-wins "
        "streams drop frames under load. Also how far behind a frame may be and still count as "
        "a redelivery or a reordering rather than a stream that moved.",
    )
    max_fps: float = Field(
        240.0,
        gt=0,
        description="Frames per second a source may advance by: a frame published t seconds "
        "after the stream's last in-order one may be up to max_frame_gap + max_fps * t ahead.",
    )
    resync_after: int = Field(
        8,
        ge=2,
        le=1000,
        description="Out-of-line frames in a row, agreeing with each other, after which the "
        "stream is taken to be there (a jump or a restart of numbering without an event).",
    )


class AdmissionReason(StrEnum):
    """Why a stage refused a message at its entry; the value starts the dead letter's reason."""

    UNKNOWN_STREAM = "unknown_stream"
    BAD_BATCH = "bad_batch"
    FUTURE_FRAME = "future_frame"


class RefusedError(ValueError):
    """A message refused at a stage's entry: dead-letter it with `str(error)` as the reason."""

    def __init__(self, reason: AdmissionReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


# --- which streams ---------------------------------------------------------------------------


class KnownStreams:
    """The streams a stage serves: the config's, and those ingest adds at run time. Frames of
    any other stream are refused.

    `added` tells the run-time ones (heron.core.commands.added_streams); it is asked when a
    frame names a stream not known yet, at most every `refresh_s`, so a stream of garbage ids
    costs one look per interval, not one per frame. A stream once known stays known: frames a
    removed source published before it went are still served.
    """

    def __init__(
        self,
        ids: Iterable[str],
        added: Callable[[], Iterable[str]] | None = None,
        *,
        refresh_s: float = 0.2,
    ) -> None:
        self._ids = frozenset(ids)
        self._added = added
        self._refresh_s = refresh_s
        self._looked_at = -math.inf

    @classmethod
    def of(
        cls, pipeline: Pipeline, added: Callable[[], Iterable[str]] | None = None
    ) -> KnownStreams:
        return cls(pipeline.stream_ids, added)

    @classmethod
    def named(cls, ids: Iterable[str]) -> KnownStreams:
        return cls(ids)

    @property
    def ids(self) -> frozenset[str]:
        return self._ids

    def check(self, stream_id: str) -> None:
        if stream_id in self._ids or self._look_again(stream_id):
            return
        known = sorted(self._ids)
        listed = ", ".join(known[:8]) + (f", ... ({len(known)} in all)" if len(known) > 8 else "")
        raise RefusedError(
            AdmissionReason.UNKNOWN_STREAM,
            f"stream {stream_id!r} is not one of the pipeline's streams ({listed or 'none'})",
        )

    def _look_again(self, stream_id: str) -> bool:
        now = time.monotonic()
        if self._added is None or now - self._looked_at < self._refresh_s:
            return False
        self._looked_at = now
        self._ids = self._ids | frozenset(self._added())
        return stream_id in self._ids


# --- muxer batches -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchShape:
    """What a muxer batch of this pipeline looks like: its frame size and most frames."""

    width: int
    height: int
    max_frames: int

    @classmethod
    def of(cls, pipeline: Pipeline) -> BatchShape:
        mux = pipeline.streammux
        # The muxer's batch-size, else one slot per configured stream (heron.streammux); sources
        # added at run time do not change it, as they do not change the muxer's.
        frames = mux.batch_size or max(pipeline.stream_count, 1)
        return cls(mux.width, mux.height, frames)

    def check(self, frames: int, width: int, height: int) -> None:
        if frames == 0:
            raise RefusedError(AdmissionReason.BAD_BATCH, "the batch holds no frames")
        if frames > self.max_frames:
            raise RefusedError(
                AdmissionReason.BAD_BATCH,
                f"{frames} frames, more than the muxer's batch of {self.max_frames} "
                "([streammux] batch-size, else the number of streams)",
            )
        if (width, height) != (self.width, self.height):
            raise RefusedError(
                AdmissionReason.BAD_BATCH,
                f"frames of {width}x{height}, not the muxer's {self.width}x{self.height} "
                "([streammux] width, height)",
            )


# --- frame order -------------------------------------------------------------------------------


class Order(StrEnum):
    """Where a frame number falls relative to its stream's last in-order frame."""

    NEXT = "next"  # in order (or the stream's first): act on it; the stream is now here
    LATE = "late"  # at or up to the gap behind: a redelivery or a reordering
    BEHIND = "behind"  # further behind: passed over; counts toward a re-sync
    AHEAD = "ahead"  # further ahead than could have happened: from the future, refuse it
    RESYNC = "resync"  # ended a run of agreeing out-of-line frames: the stream moved here


@dataclass(frozen=True)
class Placement:
    order: Order
    number: int
    last: int | None  # the stream's last in-order frame before this one
    allowed: int  # how far past `last` a frame could have been and still be in order
    run_first: int | None = None  # RESYNC: the first frame of the run that moved the stream

    @property
    def restarted(self) -> bool:
        """A re-sync onto numbering that began again at 0: the source restarted unannounced."""
        return self.order is Order.RESYNC and self.run_first == 0

    def refusal(self, stream_id: str) -> RefusedError:
        ahead = self.number - (self.last or 0)
        return RefusedError(
            AdmissionReason.FUTURE_FRAME,
            f"stream {stream_id!r} frame {self.number} is {ahead} ahead of frame {self.last}, "
            f"the last in order; at most {self.allowed} can be",
        )


@dataclass
class _Run:
    """Consecutive out-of-line frames on one side of the stream's position."""

    first: int
    last: int
    ahead: bool
    length: int = 1
    max_step: int = 0


class FrameOrder:
    """One stream's frame numbers as one stage sees them.

    `place(number, at_ns)` says where a frame falls; `at_ns` is when it was produced (the bus
    entry's publish time), so frames read in a burst from a backlog are judged by how far apart
    they were made, not read. Only NEXT and RESYNC move the stream's position.
    """

    def __init__(self, settings: AdmissionSettings) -> None:
        self.settings = settings
        self.last: int | None = None
        self.last_ns = 0
        # Grows when a re-sync shows the stream really steps further (a fast source read by a
        # slow stage), so such a stream is followed instead of refused over and over.
        self.gap = settings.max_frame_gap
        self._run: _Run | None = None

    def allowed(self, at_ns: int) -> int:
        elapsed_s = max(at_ns - self.last_ns, 0) / _NS
        return self.gap + int(self.settings.max_fps * elapsed_s)

    def place(self, number: int, at_ns: int) -> Placement:
        last = self.last
        if last is None:
            self._move(number, at_ns)
            return Placement(Order.NEXT, number, None, self.gap)
        allowed = self.allowed(at_ns)
        if last < number <= last + allowed:
            self._move(number, at_ns)
            return Placement(Order.NEXT, number, last, allowed)
        if last - self.gap <= number <= last and not self._restarting(number):
            return Placement(Order.LATE, number, last, allowed)
        run = self._extend(number, ahead=number > last)
        if run.length < self.settings.resync_after:
            return Placement(Order.AHEAD if run.ahead else Order.BEHIND, number, last, allowed)
        self.gap = max(self.gap, 2 * run.max_step)
        self._move(number, at_ns)
        return Placement(Order.RESYNC, number, last, allowed, run.first)

    def _restarting(self, number: int) -> bool:
        """Frame 0 behind the stream, and frames after it: numbering may have begun again, so
        they count toward a re-sync even when the stream was still near its start."""
        run = self._run
        return number == 0 or (run is not None and not run.ahead and run.first == 0)

    def _move(self, number: int, at_ns: int) -> None:
        self.last, self.last_ns = number, at_ns
        self._run = None  # an in-order frame: whatever was out of line was a stray

    def _extend(self, number: int, *, ahead: bool) -> _Run:
        run = self._run
        if run is not None and run.ahead == ahead and number > run.last:
            run.max_step = max(run.max_step, number - run.last)
            run.last = number
            run.length += 1
            return run
        self._run = _Run(number, number, ahead)
        return self._run


# --- metrics -----------------------------------------------------------------------------------


class AdmissionMetrics:
    """Refusals and re-syncs of one stage, on the service's registry."""

    def __init__(self, registry: CollectorRegistry, stage: str) -> None:
        self.stage = stage
        self._refused = Counter(
            "heron_admission_refused_total",
            "Messages a stage refused at its entry and dead-lettered, by reason.",
            ["stage", "reason"],
            registry=registry,
        )
        self._resyncs = Counter(
            "heron_admission_resyncs_total",
            "Streams whose frame numbers moved (a jump or a restart without an event) and were "
            "followed after resync_after agreeing frames, by direction (ahead, behind).",
            ["stage", "direction"],
            registry=registry,
        )

    def refused(self, error: RefusedError) -> None:
        self._refused.labels(self.stage, error.reason.value).inc()

    def resynced(self, placement: Placement) -> None:
        ahead = placement.last is None or placement.number > placement.last
        self._resyncs.labels(self.stage, "ahead" if ahead else "behind").inc()


__all__ = [
    "AdmissionMetrics",
    "AdmissionReason",
    "AdmissionSettings",
    "BatchShape",
    "FrameOrder",
    "KnownStreams",
    "Order",
    "Placement",
    "RefusedError",
]
