"""What the control service knows of the running pipeline, for GetStatus and WatchStatus.

Two followers keep it current: one reads every service's heartbeats
(streams.service_status), the other counts the last stage's frames per stream
(streams.metadata) over a sliding window. Sources come from ingest's newest SourcesReport,
and the model versions from inference's newest stored ModelVersions, read when asked. A
service whose heartbeat is older than `stale_s` is shown as not serving, with how long it has
been silent; after `forget_s` it is left out.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from google.protobuf.message import Message

from heron.core import streams
from heron.core.backoff import Backoff
from heron.core.bus import Bus, BusError, Cursor, Tail
from heron.v1.commands_pb2 import SourcesReport
from heron.v1.control_pb2 import ModelVersions, ServiceStatus, StreamRate
from heron.v1.detection_pb2 import FrameMetadata

log = logging.getLogger(__name__)

READ_COUNT = 256
READ_BLOCK_MS = 500
# After a bus error, before reading again (heron.core.backoff).
RETRY_INITIAL_S = 0.1
RETRY_MAX_S = 2.0


@dataclass(frozen=True)
class BoardSettings:
    stage: str
    pipeline: str
    stale_s: float  # a heartbeat older than this: not serving
    forget_s: float  # older than this: left out
    rate_window_s: float  # fps is frames over this many seconds


M = TypeVar("M", bound=Message)


class _Follower(threading.Thread, Generic[M]):
    """Reads one stream from `start` on and hands each message to `take`."""

    def __init__(
        self,
        tail: Tail[M],
        take: Callable[[M], None],
        stop: threading.Event,
        *,
        from_oldest: bool,
    ) -> None:
        super().__init__(name=f"control-{tail.key}", daemon=True)
        self._tail = tail
        self._take = take
        self._halt = stop
        self._from_oldest = from_oldest

    def run(self) -> None:
        cursor: Cursor | None = None
        backoff = Backoff(RETRY_INITIAL_S, RETRY_MAX_S)
        while not self._halt.is_set():
            try:
                if cursor is None:
                    window = self._tail.window()
                    cursor = window.oldest if self._from_oldest else window.newest
                read = self._tail.read(cursor, READ_COUNT, block_ms=READ_BLOCK_MS)
            except BusError as e:  # Redis away: health says so; keep trying
                log.debug("reading %s: %s", self._tail.key, e)
                self._halt.wait(backoff.next())
                continue
            backoff.reset()
            cursor = read.end
            for entry in read.entries:
                if entry.message is not None:
                    self._take(entry.message)


class StatusBoard:
    """Services' heartbeats, per-stream rates and ingest's sources, kept current."""

    def __init__(self, bus: Bus, settings: BoardSettings) -> None:
        self.settings = settings
        self._bus = bus
        self._lock = threading.Lock()
        self._services: dict[tuple[str, str], tuple[float, ServiceStatus]] = {}
        self._frames: deque[tuple[float, str]] = deque()
        self._stop = threading.Event()
        heartbeats = bus.tail(streams.service_status(settings.pipeline), ServiceStatus)
        metadata = bus.tail(streams.metadata(settings.stage, settings.pipeline), FrameMetadata)
        self._threads: list[threading.Thread] = [
            # Heartbeats from the retained past: a fresh control service knows who runs.
            _Follower(heartbeats, self._heartbeat, self._stop, from_oldest=True),
            _Follower(metadata, self._frame, self._stop, from_oldest=False),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(READ_BLOCK_MS / 1000 + 1)

    # --- what it holds ------------------------------------------------------------------

    def services(self, now: float | None = None) -> list[ServiceStatus]:
        """The latest heartbeat of each service instance, stale ones marked, by name."""
        now = time.time() if now is None else now
        out: list[ServiceStatus] = []
        with self._lock:
            known = sorted(self._services.items())
        for _, (sent, status) in known:
            age = now - sent
            if age > self.settings.forget_s:
                continue
            shown = ServiceStatus()
            shown.CopyFrom(status)
            if age > self.settings.stale_s and status.serving:
                shown.serving = False
                shown.detail = f"no heartbeat for {age:.0f} s"
            out.append(shown)
        return out

    def serving(self, name: str) -> list[str]:
        """The instances of service `name` serving now."""
        return [s.instance for s in self.services() if s.name == name and s.serving]

    def rates(self, now: float | None = None) -> list[StreamRate]:
        """Frames per second out of the last stage, per stream, over the rate window."""
        now = time.monotonic() if now is None else now
        window = self.settings.rate_window_s
        with self._lock:
            self._forget_before(now - window)
            counts = Counter(stream for _, stream in self._frames)
        return [StreamRate(stream_id=s, fps=n / window) for s, n in sorted(counts.items())]

    def _forget_before(self, start: float) -> None:
        """Drop frames older than `start` (call with the lock held)."""
        while self._frames and self._frames[0][0] < start:
            self._frames.popleft()

    def sources(self) -> SourcesReport | None:
        """Ingest's newest report (None when no ingest has reported)."""
        return self._bus.newest(streams.source_status(self.settings.pipeline), SourcesReport)

    def model_versions(self) -> ModelVersions | None:
        """Inference's newest stored routing of streams to versions (None: never set)."""
        return self._bus.newest(streams.model_versions(self.settings.pipeline), ModelVersions)

    # --- what the followers feed ---------------------------------------------------------

    def _heartbeat(self, message: ServiceStatus) -> None:
        sent = message.time.ToNanoseconds() / 1e9 if message.HasField("time") else time.time()
        with self._lock:
            self._services[(message.name, message.instance)] = (sent, message)

    def _frame(self, message: FrameMetadata) -> None:
        now = time.monotonic()
        with self._lock:
            self._frames.append((now, message.frame.stream_id))
            # Pruned here too, not only when a client asks for rates: with nobody asking, the
            # window grew by a frame per frame (4.8 MiB an hour in the soak, docs/benchmarks).
            self._forget_before(now - self.settings.rate_window_s)
