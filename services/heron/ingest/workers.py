"""The service's stream workers, safe to use from two threads: the command thread adds and
removes sources while the service thread watches them for crashes and ends."""

from __future__ import annotations

import threading
from collections import deque

from heron.ingest.report import source_status
from heron.ingest.runtime_sources import InUse
from heron.ingest.worker import StreamWorker
from heron.v1.control_pb2 import SourceStatus

KEEP_REMOVED = 64  # removed sources still shown (state REMOVED) in the report


class StoppingError(RuntimeError):
    """The service is shutting down: no source starts any more."""


class WorkerSet:
    def __init__(self, keep_removed: int = KEEP_REMOVED) -> None:
        self._lock = threading.Lock()
        self._workers: dict[str, StreamWorker] = {}  # insertion order: the report's order
        self._removing: set[str] = set()  # taken out, not yet stopped and flushed
        self._removed: deque[SourceStatus] = deque(maxlen=keep_removed)
        self._stopping = False

    def snapshot(self) -> list[StreamWorker]:
        with self._lock:
            return list(self._workers.values())

    def all_finished(self) -> bool:
        """Every source ended or was removed (a removal still flushing counts as not yet)."""
        with self._lock:
            workers = list(self._workers.values())
            removing = bool(self._removing)
        return not removing and all(w.finished for w in workers)

    def in_use(self) -> InUse:
        with self._lock:
            workers = list(self._workers.values())
            gone = {s.source.stream_id for s in self._removed} | self._removing
        running = [w for w in workers if not w.finished]
        return InUse(
            running={w.stream_id for w in running},
            known={w.stream_id for w in workers} | gone,
            source_ids={w.spec.source_id for w in running},
        )

    def add(self, worker: StreamWorker) -> StreamWorker | None:
        """Add `worker`; returns the ended worker of the same stream id it replaces, if any."""
        with self._lock:
            if self._stopping:
                raise StoppingError("ingest is stopping")
            replaced = self._workers.pop(worker.stream_id, None)
            self._workers[worker.stream_id] = worker
            # Running again: its REMOVED entry would contradict the new one.
            kept = [s for s in self._removed if s.source.stream_id != worker.stream_id]
            self._removed.clear()
            self._removed.extend(kept)
            return replaced

    def take(self, stream_id: str) -> StreamWorker | None:
        """Take a source out for removal; None when there is no such source."""
        with self._lock:
            worker = self._workers.pop(stream_id, None)
            if worker is not None:
                self._removing.add(stream_id)
            return worker

    def removed(self, status: SourceStatus) -> None:
        """The removal of `status.source` is done: keep its final status for the report."""
        with self._lock:
            self._removing.discard(status.source.stream_id)
            self._removed.append(status)

    def statuses(self) -> list[SourceStatus]:
        with self._lock:
            workers = list(self._workers.values())
            removed = list(self._removed)
        return [source_status(w) for w in workers] + removed

    def stop_all(self) -> None:
        """Shutdown: stop every worker; none is added after this."""
        with self._lock:
            self._stopping = True
            workers = list(self._workers.values())
        for worker in workers:
            worker.stop()
