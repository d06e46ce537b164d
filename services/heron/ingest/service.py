"""The ingest service: every enabled source of the pipeline in its own thread, on the runtime.

`python -m heron.ingest -c pipeline.txt` (see __main__). Readiness: Redis answers and every
source's worker has started. SIGTERM stops the workers (each finishes the frame in hand), then
their rings are unlinked.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from heron.core import streams
from heron.core.bus import Bus, Publisher
from heron.core.config.pipeline_file import load_pipeline
from heron.core.plan.settings.ingest import Backpressure, IngestSettings
from heron.core.plan.sources import PlannedSource, describe, plan_sources
from heron.core.runtime import FlagCheck, Service, ServiceContext
from heron.ingest.backpressure import DownstreamLag, LagGate
from heron.ingest.decoders import decoder_for
from heron.ingest.decoding import Decoder
from heron.ingest.metrics import IngestMetrics
from heron.ingest.sources import source_for
from heron.ingest.store import pixel_store
from heron.ingest.worker import StreamWorker, WorkerOutputs
from heron.v1.frame_pb2 import FrameRef
from heron.v1.stream_pb2 import StreamEvent

log = logging.getLogger(__name__)


class PipelineConfigMissingError(ValueError):
    pass


class IngestCrashError(RuntimeError):
    """A stream worker died of something other than its source."""


class IngestService(Service[IngestSettings]):
    def __init__(self, ctx: ServiceContext[IngestSettings], pipeline: Path | None = None) -> None:
        super().__init__(ctx)
        self.pipeline_path = pipeline or self.settings.pipeline_config
        self.workers: list[StreamWorker] = []
        self.bus: Bus | None = None
        self.downstream: DownstreamLag | None = None  # every_frame's later pixel reader
        self._stop = threading.Event()

    def start(self) -> None:
        planned = plan(self.pipeline_path)
        self.bus = self.settings.bus(self.ctx.metrics.registry, self.ctx.transport)
        self.ctx.check_bus()
        started = self.ctx.readiness.add(FlagCheck("sources started"))
        metrics = IngestMetrics(self.ctx.metrics.registry)
        events = self.bus.publisher(streams.events(self.settings.pipeline), StreamEvent)
        decoder = decoder_for(self.settings.decoder)
        self.downstream = self._downstream(self.bus, planned)
        for item in planned:
            worker = self._worker(self.bus, item, decoder, metrics, events)
            self.workers.append(worker)
            log.info("starting %s", describe(item))
            worker.start()
        started.set(f"{len(self.workers)} source(s) started")

    def _worker(
        self,
        bus: Bus,
        item: PlannedSource,
        decoder: Decoder,
        metrics: IngestMetrics,
        events: Publisher[StreamEvent],
    ) -> StreamWorker:
        settings = self.settings
        stream = streams.frames(item.spec.stream_id)
        gate = None
        if settings.backpressure is Backpressure.EVERY_FRAME:
            gate = LagGate(
                bus,
                stream.key,
                settings.consumer_group,
                settings.max_lag,
                stop=self._stop,
                downstream=self.downstream,
            )
        outputs = WorkerOutputs(
            frames=bus.publisher(stream, FrameRef),
            events=events,
            store=pixel_store(
                settings.frame_location,
                item.spec.stream_id,
                slots=settings.shm_slots,
                quality=settings.jpeg_quality,
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
            source, outputs, settings.reconnect, max_attempts=item.max_attempts, stop=self._stop
        )

    def _downstream(self, bus: Bus, planned: list[PlannedSource]) -> DownstreamLag | None:
        down = self.settings.downstream
        if down is None or self.settings.backpressure is not Backpressure.EVERY_FRAME:
            return None
        # The metadata stream carries every source's frames: count all of the frame streams.
        frame_keys = [streams.frames(p.spec.stream_id).key for p in planned]
        meta = streams.metadata(down.stage, self.settings.pipeline)
        return DownstreamLag(bus, frame_keys, meta.key, down.group, down.max_lag)

    def step(self) -> None:
        crashed = next((w for w in self.workers if w.crash is not None), None)
        if crashed is not None:
            # Source failures end one stream; anything else (Redis gone for good, a bug) ends
            # the process so its supervisor restarts it with every stream.
            raise IngestCrashError(
                f"stream {crashed.stream_id} crashed: {crashed.crash!r}"
            ) from crashed.crash
        if self.settings.exit_when_done and all(w.finished for w in self.workers):
            self.ctx.stop("every source has ended")
            return
        self.ctx.wait(0.2)

    def drain(self) -> None:
        self._stop.set()
        for worker in self.workers:
            # A live read blocks at most its read timeout; the grace period bounds the rest.
            worker.join(timeout=self.settings.shutdown_grace_s)
        ended = sum(w.machine.finished for w in self.workers)
        log.info("stopped %d stream(s), %d had ended", len(self.workers), ended)

    def close(self) -> None:
        self._stop.set()
        for worker in self.workers:
            if not worker.is_alive():
                worker.out.store.close()
        if self.bus is not None:
            self.bus.close()


def plan(path: Path | None) -> list[PlannedSource]:
    """The pipeline's streams; raises with a message naming the file, group and problem."""
    if path is None:
        raise PipelineConfigMissingError(
            "no pipeline config: pass -c FILE (deepstream-app txt or YAML) or set "
            "HERON_PIPELINE_CONFIG"
        )
    return plan_sources(load_pipeline(path)[0])
