"""What ingest runs, as the control service sees it: one `SourceStatus` per source, published
as a `SourcesReport` on streams.source_status(pipeline) every report interval and right after
each change."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from google.protobuf.timestamp_pb2 import Timestamp

from heron.core.bus import Publisher
from heron.ingest.state import StreamState
from heron.ingest.worker import StreamWorker
from heron.v1.commands_pb2 import SourcesReport
from heron.v1.control_pb2 import SourceState, SourceStatus

_STATES = {
    StreamState.CONNECTING: SourceState.SOURCE_STATE_CONNECTING,
    StreamState.PLAYING: SourceState.SOURCE_STATE_PLAYING,
    StreamState.RECONNECTING: SourceState.SOURCE_STATE_RECONNECTING,
    StreamState.EOS: SourceState.SOURCE_STATE_EOS,
    StreamState.ERROR: SourceState.SOURCE_STATE_ERROR,
}


def source_status(worker: StreamWorker, *, removed_at: float | None = None) -> SourceStatus:
    """The worker's status now; `removed_at` (wall clock): it was removed then."""
    removed = removed_at is not None
    status = SourceStatus(
        state=SourceState.SOURCE_STATE_REMOVED if removed else _STATES[worker.machine.state],
        last_error=worker.failure or worker.last_reason or "",
        fps=0.0 if removed else worker.fps,
        frames=worker.published,
        dropped=worker.dropped,
        reconnects=worker.reconnects,
        since=_stamp(removed_at if removed_at is not None else worker.since),
    )
    status.source.CopyFrom(worker.spec)
    return status


def _stamp(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


class SourcesReporter:
    """Publishes the report when asked and when `interval_s` has passed (thread-safe: the
    service thread and the command thread both publish)."""

    def __init__(
        self,
        publisher: Publisher[SourcesReport],
        instance: str,
        statuses: Callable[[], list[SourceStatus]],
        interval_s: float,
    ) -> None:
        self._out = publisher
        self._instance = instance
        self._statuses = statuses
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._due = 0.0  # monotonic; the first call publishes

    def publish(self) -> SourcesReport:
        with self._lock:
            report = SourcesReport(
                instance=self._instance, time=_stamp(time.time()), sources=self._statuses()
            )
            self._out.publish(report)
            self._due = time.monotonic() + self.interval_s
            return report

    def publish_if_due(self) -> SourcesReport | None:
        if time.monotonic() < self._due:
            return None
        return self.publish()
