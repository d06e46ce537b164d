"""SetParameters through a running inference service on the in-memory bus: commands sent as the
control service sends them, frames in, metadata out, the stored set across a restart, and the
heartbeats' model fields."""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from heron.core import streams
from heron.core.bus import BusSettings, MemoryBus, MemoryStreams, MemoryTransport
from heron.core.bus.tail import START, Cursor
from heron.core.commands import CommandSender, ReplyCode
from heron.core.framestore import FrameStore, Letterbox
from heron.core.plan.settings.inference import InferenceSettings
from heron.core.runtime import ServiceContext, build_context, load_settings, serve
from heron.inference.service import InferenceService
from heron.v1.commands_pb2 import Command, CommandReply, Parameters
from heron.v1.control_pb2 import ClassThreshold, ServiceStatus, SetParametersRequest
from heron.v1.detection_pb2 import FrameMetadata
from heron.v1.frame_pb2 import FrameBatch, FrameRef
from heron.v1.stream_pb2 import SourceSpec
from prometheus_client import CollectorRegistry

from tests.inference.conftest import NET_H, NET_W, write_nvinfer, write_pipeline
from tests.inference.detector import build_detector, export_detector
from tests.inference.harness import SOURCE_H, SOURCE_W, frame_image
from tests.inference.test_parameters import request
from tests.support.inprocess import no_forced_exit

PIPELINE = "default"
STREAMS = 2
CELLS = (NET_H // 16) * (NET_W // 16)  # 4 x 7 grid cells: one box each per class kept
# Config pre-cluster-threshold 0.5: class 0 (coverage 0.7) is found, class 1 (0.35) is not.
COVERAGE = (0.7, 0.35)


@pytest.fixture(scope="session")
def constant_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test detector with its head weights zeroed: whatever the frame, every cell has
    coverage COVERAGE[k] for class k and a 14x14 box around its centre (no two overlap)."""
    import torch

    model = build_detector(len(COVERAGE))
    with torch.no_grad():
        model.cov.weight.zero_()
        model.bbox.weight.zero_()
        model.cov.bias.copy_(torch.tensor([math.log(c / (1 - c)) for c in COVERAGE]))
        model.bbox.bias.fill_(0.2)  # x bbox scale 35 = 7 px from the cell centre each way
    path = tmp_path_factory.mktemp("constant") / "constant_detectnet.onnx"
    return export_detector(model, path, NET_H, NET_W)


class Running:
    """One inference service on in-memory streams, stepped by the test (its command follower
    answers on its own thread), and a bus to feed and read it."""

    def __init__(self, shared: MemoryStreams, pipeline: Path, **overrides: object) -> None:
        settings = load_settings(
            InferenceSettings,
            [],
            pipeline_config=pipeline,
            read_block_ms=10,
            consumer_name="inference-test-0",
            **overrides,
        )
        self.registry = CollectorRegistry()
        self.ctx: ServiceContext[InferenceSettings] = build_context(
            settings, self.registry, exit=no_forced_exit, transport=MemoryTransport(shared)
        )
        self.service = InferenceService(self.ctx)
        self.bus = MemoryBus(shared, BusSettings(), registry=CollectorRegistry())
        self.batches = self.bus.publisher(streams.batches(PIPELINE), FrameBatch)
        self.out = self.bus.tail(streams.metadata("inference", PIPELINE), FrameMetadata)
        self.cursor: Cursor = START
        self.store = FrameStore()
        self.next_batch = 0

    def set(self, request: SetParametersRequest) -> list[CommandReply]:
        sender = CommandSender(self.bus, PIPELINE)
        return sender.send(Command(set_parameters=request), timeout_s=5.0)

    def frames(self, batches: int) -> list[FrameMetadata]:
        """Publish `batches` muxer batches (one frame of each stream) and step the service
        until their metadata is out; that metadata, in order."""
        for _ in range(batches):
            self.batches.publish(self._batch(self.next_batch))
            self.next_batch += 1
        got: list[FrameMetadata] = []
        deadline = time.monotonic() + 10
        while len(got) < batches * STREAMS:
            assert time.monotonic() < deadline, f"only {len(got)} frames came out"
            self.service.step()
            read = self.out.read(self.cursor, 100)
            self.cursor = read.entries[-1].cursor if read.entries else read.start
            got += [e.message for e in read.entries if e.message is not None]
        return got

    def _batch(self, number: int) -> FrameBatch:
        w, h = SOURCE_W // 2, SOURCE_H // 2
        box = Letterbox.fit(SOURCE_W, SOURCE_H, w, h, padding=False)
        frames = [
            self.store.store(
                frame_image(s, number, w, h),
                FrameRef(stream_id=f"source-{s}", frame_number=number, source_id=s),
                "jpeg",
                placement=box,
            )
            for s in range(STREAMS)
        ]
        return FrameBatch(batch_id=number, frames=frames, width=w, height=h)

    def sample(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value


@pytest.fixture
def pipeline(tmp_path: Path, constant_model: Path) -> Path:
    return write_pipeline(tmp_path, write_nvinfer(tmp_path, constant_model), sources=STREAMS)


@pytest.fixture
def start(pipeline: Path) -> Iterator[Callable[..., Running]]:
    """`start(shared)`: a started service on `shared` streams; closed at the end."""
    made: list[Running] = []

    def make(shared: MemoryStreams, **overrides: object) -> Running:
        running = Running(shared, pipeline, **overrides)
        made.append(running)
        running.service.start()
        return running

    yield make
    for running in made:
        running.service.close()


def classes(metas: list[FrameMetadata]) -> list[dict[int, int]]:
    return [dict(collections.Counter(o.class_id for o in m.objects)) for m in metas]


def test_thresholds_change_the_next_frames_objects(start: Callable[..., Running]) -> None:
    h = start(MemoryStreams())
    assert classes(h.frames(1)) == [{0: CELLS}] * STREAMS

    replies = h.set(request((1, 0.3)))  # lowered: class 1 is found too
    assert [(r.code, r.service, r.instance) for r in replies] == [
        (ReplyCode.OK, "inference", "inference-test-0")
    ]
    assert classes(h.frames(1)) == [{0: CELLS, 1: CELLS}] * STREAMS

    assert [r.code for r in h.set(request((0, 1.0)))] == [ReplyCode.OK]  # raised: class 0 gone
    assert classes(h.frames(1)) == [{1: CELLS}] * STREAMS
    assert h.sample("heron_inference_parameter_updates_total", result="applied") == 2


def test_a_new_interval_changes_which_frames_are_inferred(start: Callable[..., Running]) -> None:
    h = start(MemoryStreams())
    assert all(m.inferred for m in h.frames(2))
    assert [r.code for r in h.set(request(interval=2))] == [ReplyCode.OK]
    metas = h.frames(6)
    for s in range(STREAMS):
        inferred = [m.inferred for m in metas if m.frame.stream_id == f"source-{s}"]
        assert inferred == [True, False, False, True, False, False]
    assert [len(m.objects) for m in metas if not m.inferred] == [0] * 8
    passed = h.sample("heron_inference_frames_total", result="passed_through")
    assert passed == 4 * STREAMS
    h.set(request(interval=0))
    assert all(m.inferred for m in h.frames(2))


def test_a_refused_request_names_the_field_and_changes_nothing(
    start: Callable[..., Running],
) -> None:
    shared = MemoryStreams()
    h = start(shared)
    replies = h.set(request((1, 0.3), (7, 0.5), interval=3))
    assert [(r.code, r.message) for r in replies] == [
        (
            ReplyCode.INVALID_ARGUMENT,
            "thresholds[1].class_id: 7 is not a class of the model (it has 2: 0..1)",
        )
    ]
    metas = h.frames(2)
    assert classes(metas) == [{0: CELLS}] * (2 * STREAMS)
    assert all(m.inferred for m in metas)
    assert h.bus.newest(streams.parameters(PIPELINE), Parameters) is None
    assert h.sample("heron_inference_parameter_updates_total", result="refused") == 1


def test_a_restarted_service_applies_the_stored_parameters(
    start: Callable[..., Running],
) -> None:
    shared = MemoryStreams()
    first = start(shared)
    assert [r.code for r in first.set(request((0, 1.0), (1, 0.3), interval=1))] == [0]
    first.service.close()

    again = start(shared)
    metas = again.frames(2)
    assert [m.inferred for m in metas] == [True] * STREAMS + [False] * STREAMS
    assert classes(metas[:STREAMS]) == [{1: CELLS}] * STREAMS


def test_a_stored_set_the_model_refuses_is_ignored(
    start: Callable[..., Running], caplog: pytest.LogCaptureFixture
) -> None:
    shared = MemoryStreams()
    bus = MemoryBus(shared, BusSettings(), registry=CollectorRegistry())
    stored = Parameters(thresholds=[ClassThreshold(class_id=4, pre_cluster_threshold=0.2)])
    bus.publisher(streams.parameters(PIPELINE), Parameters).publish(stored)
    with caplog.at_level(logging.WARNING, logger="heron.inference.parameters"):
        h = start(shared)
    assert any(
        "refuses them: thresholds[0].class_id: 4 is not a class" in m for m in caplog.messages
    )
    assert classes(h.frames(1)) == [{0: CELLS}] * STREAMS


def test_heartbeats_name_the_model_and_other_stages_commands_get_no_reply(
    pipeline: Path,
) -> None:
    """Served as `run_service` serves it: the heartbeat carries the model; add_source belongs
    to ingest, so inference stays silent; set_parameters is answered while it runs."""
    shared = MemoryStreams()
    h = Running(shared, pipeline, status_interval_s=0.1)
    result: list[int] = []
    served = threading.Thread(target=lambda: result.append(serve(lambda _: h.service, h.ctx)))
    served.start()
    try:
        status = wait_for_status(h.bus, lambda s: s.serving)
        info = h.service.backend.model_info()
        assert (status.name, status.instance) == ("inference", "inference-test-0")
        assert (status.model_name, status.model_version) == (info.name, info.version)
        assert info.name != ""
        sender = CommandSender(h.bus, PIPELINE)
        assert sender.send(Command(add_source=SourceSpec(uri="rtsp://cam/9")), 0.5) == []
        assert [r.code for r in h.set(request(interval=2))] == [ReplyCode.OK]
    finally:
        h.ctx.stop("test over")
        served.join(timeout=30)
    assert result == [0]


def wait_for_status(bus: MemoryBus, done: Callable[[ServiceStatus], bool]) -> ServiceStatus:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = bus.newest(streams.service_status(PIPELINE), ServiceStatus)
        if status is not None and done(status):
            return status
        time.sleep(0.02)
    raise AssertionError("no heartbeat of a serving inference service")
