"""Where frames come from: FrameBatch from the muxer, or FrameRef straight from frame streams.

Both give `Taken`: the deliveries to acknowledge once their metadata is out, and the frames
they carry, each with the index of the delivery it came in. A muxer batch that does not fit
the pipeline's muxer (`BatchShape`) gives no frames: it is listed in `refused`, to be
dead-lettered whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from heron.core import streams
from heron.core.bus import Bus, Consumer, Delivery
from heron.core.bus.admission import BatchShape, RefusedError
from heron.core.streams import StreamName
from heron.v1.frame_pb2 import FrameBatch, FrameRef


@dataclass(frozen=True)
class Taken:
    consumer: Consumer[Any]
    deliveries: list[Delivery[Any]]
    # (index into deliveries, frame): each frame says its own pixel size and placement
    frames: list[tuple[int, FrameRef]]
    stream_id: str | None = None  # a frame stream's id; None for muxer batches (many streams)
    refused: list[tuple[int, RefusedError]] = field(default_factory=list)  # whole deliveries


class Input(Protocol):
    streams: list[StreamName]

    def ensure_groups(self) -> None: ...

    def read(self, frames: int, block_ms: int) -> list[Taken]: ...


class BatchInput:
    """FrameBatch messages of `streams.batches(pipeline)`, as one consumer-group member."""

    def __init__(
        self, bus: Bus, pipeline: str, group: str, name: str | None, shape: BatchShape
    ) -> None:
        stream = streams.batches(pipeline)
        self.streams = [stream]
        self._consumer = bus.consumer(stream, FrameBatch, group, name)
        self._shape = shape

    def ensure_groups(self) -> None:
        self._consumer.ensure_group()

    def read(self, frames: int, block_ms: int) -> list[Taken]:
        # One FrameBatch is one muxer batch; read one at a time so a batch is one unit of work.
        deliveries = self._consumer.read(count=1, block_ms=block_ms)
        if not deliveries:
            return []
        pairs: list[tuple[int, FrameRef]] = []
        refused: list[tuple[int, RefusedError]] = []
        for i, d in enumerate(deliveries):
            batch = d.message
            try:
                self._shape.check(len(batch.frames), batch.width, batch.height)
            except RefusedError as e:
                refused.append((i, e))
                continue
            pairs += [(i, ref) for ref in batch.frames]
        return [Taken(self._consumer, list(deliveries), pairs, refused=refused)]


class FrameInput:
    """FrameRef messages of several `streams.frames(id)`, up to `frames` per read in all."""

    def __init__(
        self, bus: Bus, stream_ids: list[str], group: str, name: str | None = None
    ) -> None:
        self.streams = [streams.frames(s) for s in stream_ids]
        self._consumers = [bus.consumer(s, FrameRef, group, name) for s in self.streams]
        self._ids = {s.key: i for s, i in zip(self.streams, stream_ids, strict=True)}
        self._next = 0  # round-robin start, so no stream starves the others

    def ensure_groups(self) -> None:
        for consumer in self._consumers:
            consumer.ensure_group()

    def read(self, frames: int, block_ms: int) -> list[Taken]:
        taken: list[Taken] = []
        room = frames
        n = len(self._consumers)
        order = [self._consumers[(self._next + k) % n] for k in range(n)]
        self._next = (self._next + 1) % n
        for consumer in order:
            if room <= 0:
                break
            got = consumer.read(count=room, block_ms=0)
            if got:
                taken.append(self._taken(consumer, got))
                room -= len(got)
        if not taken and block_ms > 0:
            # Nothing anywhere: wait on the first stream so an idle service does not spin.
            consumer = order[0]
            got = consumer.read(count=frames, block_ms=block_ms)
            if got:
                taken.append(self._taken(consumer, got))
        return taken

    def _taken(self, consumer: Consumer[FrameRef], got: list[Delivery[FrameRef]]) -> Taken:
        frames = [(i, d.message) for i, d in enumerate(got)]
        return Taken(consumer, list(got), frames, stream_id=self._ids[consumer.key])
