"""The ingest service: every enabled source of the pipeline in its own thread, on the runtime.

`python -m heron.ingest -c pipeline.txt` (see __main__). Readiness: Redis answers and every
source's worker has started. SIGTERM stops the workers (each finishes the frame in hand), then
their rings are unlinked. While it runs, AddSource/RemoveSource commands change its sources
(heron.ingest.control); the changes are kept on the bus and re-applied at start.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import redis

from heron.core import streams
from heron.core.backoff import Backoff
from heron.core.bus import Bus, BusError, Publisher
from heron.core.commands import CommandFollower
from heron.core.config.pipeline_file import load_pipeline
from heron.core.plan.settings.ingest import Backpressure, IngestSettings
from heron.core.plan.sources import PlannedSource, describe, plan_sources
from heron.core.runtime import FlagCheck, Service, ServiceContext
from heron.core.runtime.status import instance_name
from heron.ingest.backpressure import DownstreamLag, LagGate
from heron.ingest.changes import SourceChangeLog, apply_changes
from heron.ingest.control import ControlOutputs, SourceControl
from heron.ingest.decoders import decoder_for
from heron.ingest.decoding import Decoder
from heron.ingest.flush import RingCloser
from heron.ingest.metrics import IngestMetrics
from heron.ingest.report import SourcesReporter
from heron.ingest.resume import Resume, resumable, resume_points
from heron.ingest.sources import source_for
from heron.ingest.store import pixel_store
from heron.ingest.worker import StreamWorker, WorkerOutputs
from heron.ingest.workers import WorkerSet
from heron.v1.commands_pb2 import SourceChanges, SourcesReport
from heron.v1.frame_pb2 import FrameRef
from heron.v1.stream_pb2 import StreamEvent

log = logging.getLogger(__name__)

T = TypeVar("T")


class PipelineConfigMissingError(ValueError):
    pass


class IngestCrashError(RuntimeError):
    """A stream worker died of something other than its source."""


class IngestService(Service[IngestSettings]):
    def __init__(self, ctx: ServiceContext[IngestSettings], pipeline: Path | None = None) -> None:
        super().__init__(ctx)
        self.pipeline_path = pipeline or self.settings.pipeline_config
        self.worker_set = WorkerSet()  # the command thread adds and removes; step() watches
        self.bus: Bus | None = None
        self.downstream: DownstreamLag | None = None  # every_frame's later pixel reader
        self.instance = instance_name(None)
        self.report: SourcesReporter | None = None
        self._commands: CommandFollower | None = None
        self._closer: RingCloser | None = None

    @property
    def workers(self) -> list[StreamWorker]:
        """The current sources' workers (removed ones are gone), in the order added."""
        return self.worker_set.snapshot()

    def start(self) -> None:
        config = plan(self.pipeline_path)
        self.bus = bus = self.settings.bus(self.ctx.metrics.registry, self.ctx.transport)
        self.ctx.check_bus()
        started = self.ctx.readiness.add(FlagCheck("sources started"))
        planned, changes, resumes = self._restore(bus, config)
        events = bus.publisher(streams.events(self.settings.pipeline), StreamEvent)
        make = functools.partial(
            self._worker,
            bus,
            decoder=decoder_for(self.settings.decoder),
            metrics=IngestMetrics(self.ctx.metrics.registry),
            events=events,
        )
        self.downstream = self._downstream(bus, planned)
        for item in planned:
            resume = resumes.get(item.spec.stream_id)
            worker = make(item, resume=resume)
            self.worker_set.add(worker)
            log.info("starting %s%s", describe(item), _resuming(resume))
            worker.start()
        self._follow_commands(bus, make, changes, events)
        started.set(f"{len(planned)} source(s) started")

    def _restore(
        self, bus: Bus, config: list[PlannedSource]
    ) -> tuple[list[PlannedSource], SourceChangeLog, dict[str, Resume]]:
        """What an earlier ingest left on the bus: the sources it added and removed at run
        time, applied to the config's, and where each file source resumes."""
        pipeline = self.settings.pipeline
        stored = self._read_bus(
            "the run-time source changes",
            lambda: bus.newest(streams.source_changes(pipeline), SourceChanges),
        )
        planned, changes = apply_changes(config, stored)
        files = [p.spec.stream_id for p in planned if resumable(p)]
        resumes = self._read_bus(
            "where file sources resume", lambda: resume_points(bus, pipeline, files)
        )
        return planned, changes, resumes

    def _read_bus(self, what: str, read: Callable[[], T]) -> T:
        """What an earlier ingest left on the bus, waiting out a Redis that is still starting
        (as publishing would) up to redis_give_up_after_s."""
        deadline = time.monotonic() + self.settings.redis_give_up_after_s
        backoff = Backoff(self.settings.backoff.initial_s, self.settings.backoff.max_s)
        while True:
            try:
                return read()
            except (BusError, redis.RedisError) as e:
                delay = backoff.next()
                if time.monotonic() > deadline or self.ctx.wait(delay):
                    raise
                log.warning("reading %s: %s; retrying", what, e)

    def _follow_commands(
        self,
        bus: Bus,
        make: Callable[[PlannedSource], StreamWorker],
        changes: SourceChangeLog,
        events: Publisher[StreamEvent],
    ) -> None:
        pipeline = self.settings.pipeline
        self.report = SourcesReporter(
            bus.publisher(streams.source_status(pipeline), SourcesReport),
            self.instance,
            self.worker_set.statuses,
            self.settings.report_interval_s,
        )
        self._closer = RingCloser(bus, self.settings.flush_timeout_s)
        control = SourceControl(
            pipeline=pipeline,
            workers=self.worker_set,
            make_worker=make,
            changes=changes,
            out=ControlOutputs(
                events, bus.publisher(streams.source_changes(pipeline), SourceChanges), self.report
            ),
            closer=self._closer,
        )
        self._commands = CommandFollower(
            bus, pipeline, service="ingest", instance=self.instance, handle=control.handle
        )
        self._commands.start()

    def _worker(
        self,
        bus: Bus,
        item: PlannedSource,
        decoder: Decoder,
        metrics: IngestMetrics,
        events: Publisher[StreamEvent],
        *,
        resume: Resume | None = None,
    ) -> StreamWorker:
        """`resume`: where a file source goes on after a restart (None: from its start, as a
        source added at run time does)."""
        settings = self.settings
        stream = streams.frames(item.spec.stream_id)
        stop = threading.Event()  # this worker's own; shutdown sets every worker's
        gate = None
        if settings.backpressure is Backpressure.EVERY_FRAME:
            gate = LagGate(
                bus,
                stream.key,
                settings.consumer_group,
                settings.max_lag,
                stop=stop,
                downstream=self.downstream,
            )
            if self.downstream is not None:
                self.downstream.add_frames(stream.key)  # a source added at run time
        outputs = WorkerOutputs(
            frames=bus.publisher(stream, FrameRef),
            events=events,
            store=pixel_store(
                settings.frame_location,
                item.spec.stream_id,
                slots=settings.shm_slots,
                quality=settings.jpeg_quality,
                on_ring=None if self.downstream is None else self.downstream.own_ring,
            ),
            metrics=metrics,
            service_metrics=self.ctx.metrics,
            gate=gate,
        )
        source = source_for(
            item,
            decoder,
            read_timeout_s=settings.reconnect.read_timeout_s,
            threads=settings.decode_threads,
        )
        return StreamWorker(
            source,
            outputs,
            settings.reconnect,
            max_attempts=item.max_attempts,
            stop=stop,
            read_timeout_s=item.read_timeout_s or settings.reconnect.read_timeout_s,
            resume=resume,
        )

    def _downstream(self, bus: Bus, planned: list[PlannedSource]) -> DownstreamLag | None:
        down = self.settings.downstream
        if down is None or self.settings.backpressure is not Backpressure.EVERY_FRAME:
            return None
        # The metadata stream carries every source's frames: count all of the frame streams.
        frame_keys = [streams.frames(p.spec.stream_id).key for p in planned]
        meta = streams.metadata(down.stage, self.settings.pipeline)
        # Before the first frame: what the streams hold now is a predecessor's.
        return self._read_bus(
            "where the downstream reader is",
            lambda: DownstreamLag(bus, frame_keys, meta, down.group, down.max_lag),
        )

    def step(self) -> None:
        crashed = next((w for w in self.worker_set.snapshot() if w.crash is not None), None)
        if crashed is not None:
            # Source failures end one stream; anything else (Redis gone for good, a bug) ends
            # the process so its supervisor restarts it with every stream.
            raise IngestCrashError(
                f"stream {crashed.stream_id} crashed: {crashed.crash!r}"
            ) from crashed.crash
        # A removed source counts as ended: removing the last one ends such a run.
        if self.settings.exit_when_done and self.worker_set.all_finished():
            self.ctx.stop("every source has ended")
            return
        if self.report is not None:
            self.report.publish_if_due()
        self.ctx.wait(min(0.2, self.settings.report_interval_s))

    def drain(self) -> None:
        self._stop_commands()
        self.worker_set.stop_all()
        workers = self.worker_set.snapshot()
        for worker in workers:
            # A live read blocks at most its read timeout; the grace period bounds the rest.
            worker.join(timeout=self.settings.shutdown_grace_s)
        ended = sum(w.machine.finished for w in workers)
        log.info("stopped %d stream(s), %d had ended", len(workers), ended)

    def close(self) -> None:
        self._stop_commands()
        self.worker_set.stop_all()
        if self._closer is not None:  # removed sources' rings still waiting for readers
            self._closer.close_all(timeout_s=1.0)
        for worker in self.worker_set.snapshot():
            if not worker.is_alive():
                worker.out.store.close()
        if self.bus is not None:
            self.bus.close()

    def _stop_commands(self) -> None:
        """First of all: no source comes or goes while the rest stops. A removal in progress
        waits for its worker's read timeout at most; the grace period bounds it."""
        if self._commands is not None:
            self._commands.stop(timeout_s=self.settings.shutdown_grace_s)


def _resuming(resume: Resume | None) -> str:
    if resume is None or resume.published == 0:
        return ""
    if resume.next_frame == resume.published:
        return f", going on at frame {resume.next_frame}"
    return (
        f", publishing frames {resume.next_frame}-{resume.published - 1} again (not finished "
        "downstream when the last ingest stopped)"
    )


def plan(path: Path | None) -> list[PlannedSource]:
    """The pipeline's streams; raises with a message naming the file, group and problem."""
    if path is None:
        raise PipelineConfigMissingError(
            "no pipeline config: pass -c FILE (deepstream-app txt or YAML) or set "
            "HERON_PIPELINE_CONFIG"
        )
    return plan_sources(load_pipeline(path)[0])
