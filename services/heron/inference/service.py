"""The inference service: frames in from the bus, FrameMetadata out, acknowledged after.

One `step()` takes one unit of work (a muxer batch, or up to `batch-size` frames from frame
streams), reads the pixels, infers every `interval+1`th frame of each stream in chunks of
`batch-size`, decodes and clusters the detections, publishes one FrameMetadata per frame and
only then acknowledges the input. A frame that cannot be used goes to the input stream's
dead-letter stream with the reason: pixels it cannot read, a stream the pipeline does not have
(unknown_stream), a number too far ahead of its stream (future_frame), or a muxer batch that
does not fit the muxer (bad_batch, the whole batch); none of them touches any stream's state.
While the backend is unavailable (Triton restarting) the
work is held, unacknowledged, and retried with backoff: nothing acknowledged lacks metadata.

With `grpc` set, the service also serves the Detector gRPC service (`detector_server`): images
a client sends go through the same preprocessing, model and postprocessing; the bus loop and
the gRPC calls take turns on the backend (`SharedBackend`).

SetParameters commands (per-class pre-cluster thresholds, the interval) arrive on the bus while
the service runs; `RuntimeParameters` applies them to the heads and the interval gate between
batches, and the newest stored set is applied again at start. SetModelVersions commands load
other versions of the model and route streams to them (`RuntimeModelVersions`): each batch is
split by the version its frames' streams run, and each frame's metadata names that version.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from heron.core import streams
from heron.core.bus import Delivery, Publisher
from heron.core.bus.admission import (
    AdmissionMetrics,
    AdmissionReason,
    FrameOrder,
    Order,
    RefusedError,
)
from heron.core.commands import CommandFollower, added_streams
from heron.core.config.pipeline_file import load_pipeline
from heron.core.grpc.settings import GrpcServerSettings
from heron.core.plan.settings.inference import BackendSettings, InferenceSettings, TritonSettings
from heron.core.runtime import (
    CheckResult,
    FatalError,
    FlagCheck,
    Rejection,
    Service,
    Stage,
    Work,
    oldest_frame,
    run_service,
)
from heron.core.runtime.status import instance_name
from heron.inference.backends import Backend, ModelInfo, build_backend
from heron.inference.detector import DetectorHead
from heron.inference.errors import (
    BackendError,
    BackendUnavailableError,
    BadFrameError,
    ModelMismatchError,
)
from heron.inference.geometry import Placement, frame_geometry
from heron.inference.inputs import BatchInput, FrameInput, Input, Taken
from heron.inference.interval import IntervalGate
from heron.inference.model_versions import RuntimeModelVersions, Version
from heron.inference.model_versions import updates_counter as version_updates_counter
from heron.inference.parameters import RuntimeParameters, updates_counter
from heron.inference.pipeline import (
    PrimaryDetector,
    input_limits,
    primary_detector,
    require_model,
)
from heron.inference.pixels import Image, PixelReader
from heron.inference.preprocess import Preprocessor, PreprocessSpec
from heron.inference.shared_backend import SharedBackend
from heron.inference.version_sources import version_source
from heron.v1.commands_pb2 import Command, CommandReply, Parameters
from heron.v1.control_pb2 import ModelVersions
from heron.v1.detection_pb2 import DetectedObject, FrameMetadata, StageTimestamp
from heron.v1.frame_pb2 import FrameBatch, FrameRef

if TYPE_CHECKING:
    from heron.inference.detector_server import DetectorServer

log = logging.getLogger(__name__)

STAGE = "inference"
INFERENCE_FAILED = "inference_failed"
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


@dataclass
class FrameJob:
    taken: int  # index into Work.taken
    delivery: int  # index into that Taken's deliveries
    ref: FrameRef
    image: Image | None
    muxer: Placement  # where the source sits in `image`: the muxer's scaling, or the identity
    infer: bool
    objects: list[DetectedObject] = field(default_factory=list)
    version: str = ""  # the model version the frame's stream ran (set at inference)


@dataclass
class InferenceWork(Work[FrameMetadata]):
    taken: list[Taken] = field(default_factory=list)  # the same as `inputs`, with the frames
    jobs: list[FrameJob] = field(default_factory=list)
    failed: list[FrameJob] = field(default_factory=list)  # inference failed: dead-lettered
    started: Timestamp = field(default_factory=Timestamp)


class BackendCheck:
    """Readiness of the backend right now (Triton: server and model ready)."""

    name = "backend"

    def __init__(self, backend: Backend, model: str) -> None:
        self.backend = backend
        self.model = model

    def check(self) -> CheckResult:
        ok = self.backend.ready()
        return CheckResult(ok, f"{self.model}: {'ready' if ok else 'not ready'}")


def backend_ready_gauge(
    registry: CollectorRegistry, kind: str, model: str, backend: Backend
) -> None:
    """heron_inference_backend_ready, asked of the backend at each scrape (Triton: server and
    model ready), so an alert sees a model Triton unloaded even while no frames come."""

    def ready() -> float:
        try:
            return 1.0 if backend.ready() else 0.0
        except Exception:  # a scrape must not fail with the backend: not ready is the answer
            return 0.0

    gauge = Gauge(
        "heron_inference_backend_ready",
        "1 while the inference backend and its model answer ready, else 0 (asked at scrape).",
        ["backend", "model"],
        registry=registry,
    )
    gauge.labels(kind, model).set_function(ready)


class StreamCounters:
    """Per stream and model version: what a canary's gates compare between versions."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["stream", "version"]
        self.frames = Counter(
            "heron_inference_stream_frames_total",
            "Frames given metadata (inferred or passed through), by stream and model version.",
            labels,
            registry=registry,
        )
        self.inferred = Counter(
            "heron_inference_stream_inferred_total",
            "Frames inferred, by stream and model version.",
            labels,
            registry=registry,
        )
        self.objects = Counter(
            "heron_inference_stream_objects_total",
            "Objects detected in the frames inferred, by stream and model version.",
            labels,
            registry=registry,
        )
        self.failures = Counter(
            "heron_inference_stream_failures_total",
            "Frames whose inference failed (dead-lettered inference_failed), by stream and "
            "model version.",
            labels,
            registry=registry,
        )

        self.dead_lettered = Counter(
            "heron_inference_stream_dead_lettered_total",
            "Frames dead-lettered, by stream and reason (a whole muxer batch counts each of its "
            "frames).",
            ["stream", "reason"],
            registry=registry,
        )

    def rejected(self, rejections: Iterable[Rejection]) -> None:
        """The frames a unit of work dead-letters, once its handling is final."""
        for rejection in rejections:
            for stream in _streams_of(rejection):
                self.dead_lettered.labels(stream, rejection.reason).inc()

    def count(self, work: InferenceWork) -> None:
        for j in work.jobs:
            labels = (j.ref.stream_id, j.version)
            self.frames.labels(*labels).inc()
            if j.infer:
                self.inferred.labels(*labels).inc()
                self.objects.labels(*labels).inc(len(j.objects))
        for j in work.failed:
            self.failures.labels(j.ref.stream_id, j.version).inc()


class InferenceService(Service[InferenceSettings]):
    def start(self) -> None:
        s = self.settings
        self.ctx.check_bus()
        self.model_loaded = self.ctx.readiness.add(FlagCheck("model loaded"))
        registry = self.ctx.metrics.registry
        self.frames_total = Counter(
            "heron_inference_frames_total",
            "Frames handled, by result (inferred, passed_through, dead_lettered).",
            ["result"],
            registry=registry,
        )
        self.unavailable_total = Counter(
            "heron_inference_backend_unavailable_total",
            "Inference calls that found the backend unavailable (retried).",
            registry=registry,
        )
        self.batch_frames = Histogram(
            "heron_inference_batch_frames",
            "Frames in one call of the backend (at most the model's batch-size).",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.stream_counters = StreamCounters(registry)
        pipeline, findings = load_pipeline(s.pipeline_config)
        for warning in findings.warnings:  # e.g. a [primary-gie] key Heron cannot honour
            log.warning("config: %s", warning)
        self.detector: PrimaryDetector = primary_detector(
            pipeline, s.pipeline_config, findings.items
        )
        try:
            require_model(s.backend, self.detector)
        except ModelMismatchError as e:  # the config is wrong for this backend: no restart mends it
            raise FatalError(str(e)) from e
        # The config's streams, and those ingest adds at run time (asked when a frame names one).
        self.limits = input_limits(pipeline, added=lambda: added_streams(self.bus, s.pipeline))
        self.admission_metrics = AdmissionMetrics(registry, STAGE)
        self.orders: dict[str, FrameOrder] = {}  # per stream: where its frame numbers are
        self.bus = s.bus(registry, self.ctx.transport)
        stored = self.bus.newest(streams.model_versions(s.pipeline), ModelVersions)
        try:
            self.backend: Backend = build_backend(_pinned(s.backend, stored), self.detector.nvinfer)
        except BackendUnavailableError as e:
            raise _not_ready(s.backend, e) from e
        self.shared = SharedBackend(self.backend)
        info = self.backend.model_info()
        self.preprocess = Preprocessor(
            PreprocessSpec.from_nvinfer(self.detector.nvinfer.property, info.input_shape)
        )
        self.head = DetectorHead(
            self.detector.nvinfer, info, bbox_scale=s.bbox_scale, bbox_offset=s.bbox_offset
        )
        self.gate = IntervalGate(self.detector.interval)
        self.versions = self._model_versions(info)
        self.parameters = self._restore_parameters(info.name)
        # After the parameters: the versions it loads get the thresholds in force.
        self.versions.restore(stored)
        self.pixels = PixelReader()
        self.input: Input = (
            BatchInput(self.bus, s.pipeline, s.group, s.member, self.limits.batch)
            if s.input == "batches"
            else FrameInput(self.bus, s.frame_streams, s.group, s.member)
        )
        self.input.ensure_groups()
        self.metadata: Publisher[FrameMetadata] = self.bus.publisher(
            streams.metadata(STAGE, s.pipeline), FrameMetadata
        )
        self.stage: Stage[FrameMetadata, InferenceWork] = Stage(
            self.ctx,
            name=STAGE,
            output=self.metadata,
            take=self._take,
            handle=self._handle,
            retry_initial_s=s.retry_initial_s,
            retry_max_s=s.retry_max_s,
            retry_on=(BackendUnavailableError,),
        )
        self.ctx.readiness.add(BackendCheck(self.backend, info.name))
        backend_ready_gauge(registry, s.backend.kind, info.name, self.backend)
        self.model_loaded.set(f"{info.name} version {info.version}")
        self.ctx.status.model_name = info.name
        self.ctx.status.model_version = self.versions.routing.default
        self.api: DetectorServer | None = None if s.grpc is None else self._start_api(s.grpc)
        self.commands = CommandFollower(
            self.bus,
            s.pipeline,
            service=STAGE,
            instance=instance_name(s.member),
            handle=self._command,
        )
        self.commands.start()
        log.info(
            "serving",
            extra={"model": info.name, "version": info.version, "inputs": str(self.input.streams)},
        )

    # --- the loop -----------------------------------------------------------------------

    def step(self) -> None:
        done = self.stage.step()
        if done is not None:
            self._count(done)

    def drain(self) -> None:
        """One last try at held work; if the backend is still away it stays pending."""
        self._stop_commands()  # stopping: a change taken now would reach no frame
        done = self.stage.drain()
        if done is not None:
            self._count(done)

    def close(self) -> None:
        self._stop_commands()  # before the bus it reads is closed
        api = getattr(self, "api", None)
        if api is not None:  # first: its in-flight calls still use the backend
            api.stop()
        versions: RuntimeModelVersions | None = getattr(self, "versions", None)
        if versions is not None:
            versions.close()
        for name in ("backend", "pixels", "bus"):
            part = getattr(self, name, None)
            if part is not None:
                part.close()

    def _stop_commands(self) -> None:
        commands: CommandFollower | None = getattr(self, "commands", None)
        if commands is not None:
            commands.stop()

    def _command(self, command: Command) -> CommandReply | None:
        """A command for inference: parameters or model versions (None: another stage's)."""
        for handle in (self.parameters.handle, self.versions.handle):
            answer = handle(command)
            if answer is not None:
                return answer
        return None

    def _model_versions(self, info: ModelInfo) -> RuntimeModelVersions:
        """The config's model as the first version, and where the others come from."""
        s = self.settings
        config = Version(info.version, self.shared, self.head)
        source = version_source(s.backend, self.detector.nvinfer, info.name, info.version)
        return RuntimeModelVersions(
            config,
            info,
            source=source,
            make_head=lambda found: DetectorHead(
                self.detector.nvinfer, found, bbox_scale=s.bbox_scale, bbox_offset=s.bbox_offset
            ),
            store=self.bus.publisher(streams.model_versions(s.pipeline), ModelVersions),
            updates=version_updates_counter(self.ctx.metrics.registry),
            on_default=self._heartbeat_version,
        )

    def _heartbeat_version(self, version: str) -> None:
        self.ctx.status.model_version = version  # heartbeats name the default version

    def _restore_parameters(self, model: str) -> RuntimeParameters:
        """Run-time parameters over every version's head and the gate, with the stored set
        applied again."""
        store = streams.parameters(self.settings.pipeline)
        parameters = RuntimeParameters(
            self.versions,
            self.gate,
            self.bus.publisher(store, Parameters),
            updates_counter(self.ctx.metrics.registry),
            model,
        )
        parameters.restore(self.bus.newest(store, Parameters))
        return parameters

    def _start_api(self, settings: GrpcServerSettings) -> DetectorServer:
        """The Detector gRPC service over this service's model, started."""
        from heron.inference.detector_server import DetectorServer
        from heron.inference.grpc_api import InferenceDetectorServicer
        from heron.inference.image_detector import ImageDetector
        from heron.inference.model_card import model_card

        s = self.settings
        detector = ImageDetector(
            self.preprocess, self.shared, self.head, self.detector.batch_size, self.ctx.metrics
        )
        card = model_card(
            self.backend.model_info(),
            self.preprocess.spec,
            self.detector.nvinfer,
            settings=s.backend,
            backend=self.backend,
            batch_size=detector.batch_size,
        )
        servicer = InferenceDetectorServicer(
            detector,
            card,
            max_images=s.detect_max_images,
            max_image_pixels=s.detect_max_image_pixels,
        )
        api = DetectorServer(settings, servicer, self.shared, self.backend.ready)
        try:
            api.start()
        except (OSError, ValueError) as e:  # a taken port, a missing or bad TLS file
            raise FatalError(f"grpc: {e}") from e
        return api

    # --- one unit of work ---------------------------------------------------------------

    def _take(self) -> InferenceWork | None:
        limit = max(self.detector.batch_size, 1)
        taken = self.input.read(limit, self.settings.read_block_ms)
        if not taken:
            return None
        work = InferenceWork(inputs=taken, taken=taken)
        work.started.GetCurrentTime()
        for t, unit in enumerate(taken):
            for d, refused in unit.refused:
                self._refuse(work, t, d, unit.deliveries[d].message, refused)
            for d, ref in unit.frames:
                self._admit(work, t, d, ref)
        return work

    def _refuse(
        self, work: InferenceWork, t: int, d: int, message: Message, error: RefusedError
    ) -> None:
        """Dead-letter `message` (a frame, or a whole muxer batch) refused at the entry."""
        self.admission_metrics.refused(error)
        self._bad(work, t, d, message, reason=error.reason.value, detail=str(error))

    def _bad(
        self, work: InferenceWork, t: int, d: int, message: Message, *, reason: str, detail: str
    ) -> None:
        """Dead-letter `message`, a part of delivery `d` of `work.taken[t]` (or all of it)."""
        unit = work.taken[t]
        work.rejected.append(
            Rejection(
                unit.consumer,
                unit.deliveries[d],
                reason,
                detail,
                payload=message.SerializeToString(),
                type_name=message.DESCRIPTOR.full_name,
            )
        )

    def _admit(self, work: InferenceWork, t: int, d: int, ref: FrameRef) -> None:
        unit = work.taken[t]
        try:
            self._check_entry(ref, unit.stream_id, unit.deliveries[d])
        except RefusedError as e:
            self._refuse(work, t, d, ref, e)
            return
        try:
            image = self.pixels.read(ref)
            # Undo the muxer's scaling too (the ref carries it), so boxes land on the source.
            muxer = self.pixels.placement(ref)
        except BadFrameError as e:
            self._bad(work, t, d, ref, reason=e.reason, detail=str(e))
            return
        infer = self.gate.admit(ref.stream_id)
        work.jobs.append(FrameJob(t, d, ref, image, muxer, infer))

    def _check_entry(self, ref: FrameRef, source: str | None, delivery: Delivery[Any]) -> None:
        """Refuse a frame of a stream this pipeline does not have, or numbered too far ahead of
        its stream. `source`: the frame stream it was read from (None: a muxer batch)."""
        stream_id = ref.stream_id
        if source is None:
            self.limits.streams.check(stream_id)
        elif stream_id != source:
            raise RefusedError(
                AdmissionReason.UNKNOWN_STREAM,
                f"the frame says stream {stream_id!r} but came on the frame stream of {source!r}",
            )
        order = self.orders.get(stream_id)
        if order is None:
            order = self.orders[stream_id] = FrameOrder(self.settings.admission)
        # Judged by when the frame was published, so a backlog read in a burst is no jump.
        at_ns = delivery.published_ns if delivery.published_ns is not None else time.time_ns()
        placed = order.place(ref.frame_number, at_ns)
        if placed.order is Order.AHEAD:
            raise placed.refusal(stream_id)
        if placed.order is Order.RESYNC:
            self.admission_metrics.resynced(placed)
            log.warning(
                "stream %r moved from frame %s to %d; following it",
                stream_id,
                placed.last,
                placed.number,
            )

    def _handle(self, work: InferenceWork) -> None:
        try:
            self._infer(work)
        except BackendUnavailableError:
            self.unavailable_total.inc()
            raise  # the stage holds the work and retries it with backoff
        work.out = self._metadata(work)
        self.stream_counters.rejected(work.rejected)  # final now: the stage sends them next

    def _infer(self, work: InferenceWork) -> None:
        # A retry after an outage starts over: forget failures recorded by the last attempt.
        work.rejected = [r for r in work.rejected if r.reason != INFERENCE_FAILED]
        work.failed = []
        # One routing for the whole unit: a change lands between units, never inside one.
        with self.versions.use() as routing:
            for j in work.jobs:
                j.version = routing.version_of(j.ref.stream_id)
            for version, jobs in _by_version(j for j in work.jobs if j.infer):
                self._infer_chunks(work, routing.versions[version], jobs)
        failed = {id(j) for j in work.failed}
        work.jobs = [j for j in work.jobs if id(j) not in failed]

    def _infer_chunks(self, work: InferenceWork, version: Version, jobs: list[FrameJob]) -> None:
        """Infer `jobs` (frames of streams that run `version`) in chunks of `batch-size`."""
        size = max(self.detector.batch_size, 1)
        for i in range(0, len(jobs), size):
            chunk = jobs[i : i + size]
            images = [j.image for j in chunk if j.image is not None]
            named = oldest_frame(j.ref for j in chunk)  # the chunk's exemplar
            with self.ctx.metrics.track("inference.preprocess", frames=len(chunk), frame=named):
                batch, placements = self.preprocess(images)
            try:
                with self.ctx.metrics.track("inference.infer", frames=len(chunk), frame=named):
                    outputs = version.backend.infer(batch)
                self.batch_frames.observe(len(chunk))
            except BackendError as e:
                log.error(
                    "inference failed for %d frames (version %s): %s", len(chunk), version.name, e
                )
                for j in chunk:
                    self._bad(
                        work, j.taken, j.delivery, j.ref, reason=INFERENCE_FAILED, detail=str(e)
                    )
                work.failed += chunk
                continue
            with self.ctx.metrics.track("inference.postprocess", frames=len(chunk), frame=named):
                geometry = [
                    frame_geometry(j.muxer, p) for j, p in zip(chunk, placements, strict=True)
                ]
                found = version.head.detections(outputs, geometry)
                for j, detections in zip(chunk, found, strict=True):
                    j.objects = version.head.objects(detections)

    def _metadata(self, work: InferenceWork) -> list[FrameMetadata]:
        ended = Timestamp()
        ended.GetCurrentTime()
        return [
            FrameMetadata(
                frame=j.ref,
                objects=j.objects,
                model_name=self.versions.model_name,
                model_version=j.version,
                stages=[StageTimestamp(stage=STAGE, start=work.started, end=ended)],
                inferred=j.infer,
            )
            for j in work.jobs
        ]

    def _count(self, work: InferenceWork) -> None:
        passed = sum(not j.infer for j in work.jobs)
        self.frames_total.labels("inferred").inc(len(work.jobs) - passed)
        self.frames_total.labels("passed_through").inc(passed)
        self.frames_total.labels("dead_lettered").inc(work.dead_lettered)
        self.stream_counters.count(work)


def _pinned(backend: BackendSettings, stored: ModelVersions | None) -> BackendSettings:
    """A Triton backend with no version set serves the newest Triton has at start. After a
    restart mid-rollout that may be the canary: the stored routing names the version the
    config's model was (its config_version), and the backend keeps serving that one."""
    if not isinstance(backend, TritonSettings) or backend.model_version or stored is None:
        return backend
    if stored.model_name != backend.model_name or not stored.config_version:
        return backend
    log.info(
        "model %r: serving version %s, the config's version of the stored routing",
        backend.model_name,
        stored.config_version,
    )
    return backend.model_copy(update={"model_version": stored.config_version})


def _not_ready(backend: BackendSettings, e: BackendUnavailableError) -> BackendUnavailableError:
    """A backend that is not ready at start (Triton down or still loading) ends the start with
    exit 1 and one line that says how long it was waited for: whoever runs the service starts it
    again (Kubernetes; `heron run`, which shows this line and gives up after
    `max_unready_crashes` starts in a row that never became ready, docs/run.md)."""
    if not isinstance(backend, TritonSettings):
        return BackendUnavailableError(f"the backend was not ready: {e}")
    where = f"Triton at {backend.url}"
    return BackendUnavailableError(
        f"{where} was not ready within {backend.ready_timeout_s:g} s "
        f"(backend.ready_timeout_s): {str(e).removeprefix(f'{where}: ')}"
    )


def _streams_of(rejection: Rejection) -> list[str]:
    """The streams of the frames a rejection dead-letters (read back from its payload: they are
    few, and only the frame or batch itself names them)."""
    if rejection.payload is None:
        return []
    if rejection.type_name == FrameRef.DESCRIPTOR.full_name:
        return [FrameRef.FromString(rejection.payload).stream_id]
    if rejection.type_name == FrameBatch.DESCRIPTOR.full_name:
        return [f.stream_id for f in FrameBatch.FromString(rejection.payload).frames]
    return []


def _by_version(jobs: Iterable[FrameJob]) -> list[tuple[str, list[FrameJob]]]:
    """`jobs` grouped by the version their stream runs, in the order versions first appear."""
    groups: dict[str, list[FrameJob]] = {}
    for j in jobs:
        groups.setdefault(j.version, []).append(j)
    return list(groups.items())


def main(argv: list[str] | None = None) -> int:
    return run_service(InferenceService, InferenceSettings, argv)


__all__ = ["InferenceService", "main"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
