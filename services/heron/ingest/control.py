"""AddSource and RemoveSource applied to a running ingest: the CommandFollower's handler.

It runs on the follower's thread, one command at a time. Adding starts a stream worker built as
a config source's is; removing stops that one worker, then publishes its end of stream so
streammux drains the frames it already published (other streams never wait). Both publish the
new SourceChanges (what a restart re-applies) and a SourcesReport before answering.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from heron.core import streams
from heron.core.bus import Publisher
from heron.core.commands import ReplyCode, reply
from heron.core.plan.sources import PlannedSource, describe
from heron.ingest import events
from heron.ingest.changes import SourceChangeLog
from heron.ingest.flush import RingCloser
from heron.ingest.report import SourcesReporter, source_status
from heron.ingest.runtime_sources import RefusedError, plan_added
from heron.ingest.worker import StreamWorker
from heron.ingest.workers import StoppingError, WorkerSet
from heron.v1.commands_pb2 import Command, CommandReply, SourceChanges
from heron.v1.control_pb2 import SourceStatus
from heron.v1.stream_pb2 import SourceSpec, StreamEvent

log = logging.getLogger(__name__)

JOIN_MARGIN_S = 1.0  # beyond a worker's read timeout: the frame in hand, the publish


@dataclass
class ControlOutputs:
    events: Publisher[StreamEvent]
    changes: Publisher[SourceChanges]
    report: SourcesReporter


class SourceControl:
    def __init__(
        self,
        *,
        pipeline: str,
        workers: WorkerSet,
        make_worker: Callable[[PlannedSource], StreamWorker],
        changes: SourceChangeLog,
        out: ControlOutputs,
        closer: RingCloser,
    ) -> None:
        self.pipeline = pipeline
        self.workers = workers
        self._make_worker = make_worker
        self.changes = changes
        self.out = out
        self.closer = closer

    def handle(self, command: Command) -> CommandReply | None:
        kind = command.WhichOneof("command")
        if kind == "add_source":
            return self.add(command.add_source)
        if kind == "remove_source":
            return self.remove(command.remove_source)
        return None  # set_parameters belongs to inference

    def add(self, request: SourceSpec) -> CommandReply:
        try:
            planned = plan_added(request, self.workers.in_use())
            worker = self._make_worker(planned)
            replaced = self.workers.add(worker)
        except RefusedError as e:
            return e.reply()
        except StoppingError as e:
            return reply(ReplyCode.UNAVAILABLE, f"ingest: {e}")
        status = source_status(worker)  # before it starts: CONNECTING
        if replaced is not None:  # an ended source of that id: its frames may still be read
            self._release(replaced)
        self.changes.added(planned.spec)
        # Recorded before its first frame: stages that admit only the pipeline's streams
        # (heron.core.bus.admission.KnownStreams) find it there when that frame arrives.
        self._changed()
        worker.start()
        log.info("added %s", describe(planned))
        return _ok(status)

    def remove(self, stream_id: str) -> CommandReply:
        worker = self.workers.take(stream_id)
        if worker is None:
            return reply(
                ReplyCode.NOT_FOUND, f"stream_id: no source {stream_id} in pipeline {self.pipeline}"
            )
        self._stop(worker)
        status = source_status(worker, removed_at=time.time())
        self.workers.removed(status)
        self._release(worker)
        self.changes.removed(stream_id)
        log.info("removed %s after %d frames", stream_id, worker.published)
        self._changed()
        return _ok(status)

    def _stop(self, worker: StreamWorker) -> None:
        """Stop the one worker; then, unless it had ended on its own (its EOS or error went out
        then), end its stream so streammux drains what it published and trackers end tracks."""
        worker.stop()
        worker.join(worker.read_timeout_s + JOIN_MARGIN_S)
        if worker.is_alive():
            log.warning("stream %s did not stop within its read timeout", worker.stream_id)
        # A stopped worker ends in no state of its own: finished means it ended before.
        if not worker.machine.finished:
            self.out.events.publish(events.end_of_stream(worker.stream_id, worker.published))

    def _release(self, worker: StreamWorker) -> None:
        self.closer.close_when_read(streams.frames(worker.stream_id).key, worker.out.store)

    def _changed(self) -> None:
        self.out.changes.publish(self.changes.message())
        self.out.report.publish()


def _ok(status: SourceStatus) -> CommandReply:
    answer = reply(ReplyCode.OK)
    answer.source.CopyFrom(status)
    return answer
