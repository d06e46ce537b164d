"""The frame streams streammux reads: one reader thread per source, added and removed as
sources come and go.

Sources are found two ways, so neither a missed event nor a producer that publishes no events
leaves a camera out: `StreamEvent.started` on the pipeline's event stream, and a periodic SCAN
for `heron:frames:*` keys. `StreamEvent.eos` (or a fatal error) ends a source: its reader
empties the stream, hands the rest to the batcher and stops. An ended stream is picked up
again only when new frames appear in it or it starts again.
"""

from __future__ import annotations

import fnmatch
import logging
import threading
from collections.abc import Callable

import redis

from heron.core import streams
from heron.core.bus import Bus, Consumer, Delivery
from heron.streammux.batcher import Batcher
from heron.v1.frame_pb2 import FrameRef
from heron.v1.stream_pb2 import StreamEvent

log = logging.getLogger(__name__)

FRAMES_PREFIX = streams.frames("x").key[: -len("x")]  # "heron:frames:"


def stream_id_of(key: str) -> str | None:
    """The source id of a frame-stream key; None for other keys (dead letters, ...)."""
    if not key.startswith(FRAMES_PREFIX):
        return None
    stream_id = key[len(FRAMES_PREFIX) :]
    try:
        return stream_id if streams.frames(stream_id).key == key else None
    except ValueError:
        return None


class SourceReader(threading.Thread):
    """Moves one frame stream's deliveries into the batcher, as fast as it has room."""

    def __init__(
        self,
        stream_id: str,
        consumer: Consumer[FrameRef],
        batcher: Batcher[Delivery[FrameRef]],
        *,
        block_ms: int,
        on_done: Callable[[SourceReader, BaseException | None], None],
    ) -> None:
        super().__init__(name=f"streammux-{stream_id}", daemon=True)
        self.stream_id = stream_id
        self.consumer = consumer
        self.batcher = batcher
        self.block_ms = block_ms
        self._on_done = on_done
        self._ending = threading.Event()
        self._stopping = threading.Event()

    def end(self) -> None:
        """The source has ended: read what is left, then stop."""
        self._ending.set()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        error: BaseException | None = None
        try:
            self._loop()
        except Exception as e:  # handed to the service thread, which fails the process
            error = e
        self._on_done(self, error)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            if not self.batcher.wait_for_room(self.stream_id, self.block_ms / 1000):
                continue
            ending = self._ending.is_set()
            room = max(1, self.batcher.room(self.stream_id))
            got = self.consumer.read(count=room, block_ms=0 if ending else self.block_ms)
            if got:
                self.batcher.add(self.stream_id, got)
            elif ending:
                self.batcher.end_source(self.stream_id)
                return


class SourceSet:
    """The live sources and their readers; thread-safe (discovery and the service use it)."""

    def __init__(
        self,
        bus: Bus,
        batcher: Batcher[Delivery[FrameRef]],
        *,
        group: str,
        consumer_name: str,
        block_ms: int,
        match: str = "*",
        on_change: Callable[[int], None] = lambda n: None,
    ) -> None:
        self.bus = bus
        self.match = match
        self.batcher = batcher
        self.group = group
        self.consumer_name = consumer_name
        self.block_ms = block_ms
        self._on_change = on_change
        self._lock = threading.Lock()
        self._readers: dict[str, SourceReader] = {}
        self._consumers: dict[str, Consumer[FrameRef]] = {}
        self._ended: dict[str, str] = {}  # stream id -> last entry id when it ended
        self._errors: list[tuple[str, BaseException]] = []
        self._stopped = False

    @property
    def live(self) -> list[str]:
        with self._lock:
            return sorted(self._readers)

    def consumer(self, stream_id: str) -> Consumer[FrameRef]:
        with self._lock:
            return self._consumer(stream_id)

    def _consumer(self, stream_id: str) -> Consumer[FrameRef]:
        consumer = self._consumers.get(stream_id)
        if consumer is None:
            consumer = self.bus.consumer(
                streams.frames(stream_id), FrameRef, self.group, self.consumer_name
            )
            self._consumers[stream_id] = consumer
        return consumer

    def wanted(self, stream_id: str) -> bool:
        return fnmatch.fnmatchcase(stream_id, self.match)

    def add(self, stream_id: str) -> bool:
        """Start reading `stream_id` unless it is read already (or not `match`ed); True when a
        reader started."""
        if not self.wanted(stream_id):
            return False
        with self._lock:
            if self._stopped or stream_id in self._readers:
                return False
            self._ended.pop(stream_id, None)
            self.batcher.add_source(stream_id)
            reader = SourceReader(
                stream_id,
                self._consumer(stream_id),
                self.batcher,
                block_ms=self.block_ms,
                on_done=self._reader_done,
            )
            self._readers[stream_id] = reader
            reader.start()
            count = len(self._readers)
        log.info("source added", extra={"stream": stream_id, "sources": count})
        self._on_change(count)
        return True

    def end(self, stream_id: str) -> None:
        """End of stream: the reader empties the stream, then the source goes.

        A source that ended before it was ever seen (a short clip) is started now, so its
        frames are still batched before it goes.
        """
        if self.wanted(stream_id) and stream_id not in self.live:
            self.add(stream_id)
        with self._lock:
            reader = self._readers.get(stream_id)
        if reader is not None:
            reader.end()

    def discover(self) -> list[str]:
        """Look for frame streams; start readers for new ones. Returns those added."""
        found = []
        for key in self.bus.stream_keys(f"{FRAMES_PREFIX}{self.match}"):
            stream_id = stream_id_of(key)
            if stream_id is None:
                continue
            with self._lock:
                known = stream_id in self._readers
                ended_at = self._ended.get(stream_id)
            if known or (ended_at is not None and ended_at == (self.bus.newest_id(key) or "")):
                continue
            if self.add(stream_id):
                found.append(stream_id)
        return found

    def check(self) -> None:
        """Raise the first error a reader died of (the process should fail and restart)."""
        with self._lock:
            if self._errors:
                stream_id, error = self._errors[0]
                raise RuntimeError(f"reader of stream {stream_id!r} failed: {error}") from error

    def stop(self, timeout_s: float) -> None:
        with self._lock:
            self._stopped = True
            readers = list(self._readers.values())
        for reader in readers:
            reader.stop()
        for reader in readers:
            reader.join(timeout_s)

    def _reader_done(self, reader: SourceReader, error: BaseException | None) -> None:
        last = None
        if error is None and not self._stopped:
            try:
                last = self.bus.newest_id(reader.consumer.key) or ""
            except redis.RedisError as e:
                log.warning("could not read the last id of %r: %s", reader.consumer.key, e)
        with self._lock:
            if self._readers.get(reader.stream_id) is reader:
                del self._readers[reader.stream_id]
            if error is not None:
                self._errors.append((reader.stream_id, error))
            elif last is not None:
                self._ended[reader.stream_id] = last
            count = len(self._readers)
        if error is None and not self._stopped:
            log.info("source ended", extra={"stream": reader.stream_id, "sources": count})
        self._on_change(count)


class Discovery(threading.Thread):
    """Follows the pipeline's StreamEvents and scans for frame streams every `interval_s`."""

    def __init__(
        self,
        sources: SourceSet,
        events: Consumer[StreamEvent],
        *,
        interval_s: float,
    ) -> None:
        super().__init__(name="streammux-discovery", daemon=True)
        self.sources = sources
        self.events = events
        self.interval_s = interval_s
        self._stopping = threading.Event()
        self.error: BaseException | None = None
        self.rounds = 0

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        try:
            while not self._stopping.is_set():
                self.sources.discover()
                self.rounds += 1
                # Waiting on the event stream doubles as the pause between scans.
                block_ms = max(1, int(self.interval_s * 1000))
                deliveries = self.events.read(count=100, block_ms=block_ms)
                for delivery in deliveries:
                    self.handle(delivery.message)
                self.events.ack(deliveries)
        except Exception as e:  # reported by the service thread, which fails the process
            self.error = e

    def handle(self, event: StreamEvent) -> None:
        kind = event.WhichOneof("event")
        try:
            streams.frames(event.stream_id)
        except ValueError as e:
            log.warning("ignoring a %s event: %s", kind, e)
            return
        if kind == "started":
            self.sources.add(event.stream_id)
        elif kind == "eos" or (kind == "error" and event.error.fatal):
            self.sources.end(event.stream_id)
