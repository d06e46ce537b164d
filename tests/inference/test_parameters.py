"""SetParameters at run time, below the service: what a request changes in the detector head and
the interval gate, what is refused (naming the field, changing nothing), what is stored for a
restart and how a stored set is applied again."""

from __future__ import annotations

import collections
import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from heron.core import streams
from heron.core.bus import Bus, BusSettings, BusUnavailableError, MemoryBus, MemoryStreams
from heron.core.commands import ReplyCode
from heron.core.config.nvinfer import read_nvinfer
from heron.inference.backends.base import FloatArray, ModelInfo
from heron.inference.detector import DetectorHead
from heron.inference.geometry import frame_geometry, place
from heron.inference.interval import IntervalGate
from heron.inference.parameters import MAX_INTERVAL, RuntimeParameters, updates_counter
from heron.postprocess import FrameGeometry
from heron.v1.commands_pb2 import Command, Parameters
from heron.v1.control_pb2 import ClassThreshold, SetParametersRequest
from heron.v1.stream_pb2 import SourceSpec
from prometheus_client import CollectorRegistry

from tests.inference.conftest import NET_H, NET_W, write_nvinfer
from tests.inference.detector import BBOX_NAME, COV_NAME

PIPELINE = "params-test"
INFO = ModelInfo("det", "3", "input_1", (3, NET_H, NET_W), (COV_NAME, BBOX_NAME), 0)
FRAME: FrameGeometry = frame_geometry(
    None, place((NET_W, NET_H), (NET_W, NET_H), keep_aspect=False, symmetric=False)
)
CELLS = (NET_H // 16) * (NET_W // 16)  # 4 x 7 grid cells, one box each per class above threshold


def outputs(coverage: tuple[float, float]) -> dict[str, FloatArray]:
    """Grid outputs where every cell sees a 14x14 box around its centre, with coverage
    `coverage[k]` for class k: the boxes do not overlap, so each class above its threshold
    keeps all CELLS of them."""
    cov = np.empty((1, 2, NET_H // 16, NET_W // 16), np.float32)
    for k, c in enumerate(coverage):
        cov[0, k] = c
    bbox = np.full((1, 8, NET_H // 16, NET_W // 16), 0.2, np.float32)  # 0.2 x scale 35 = 7 px
    return {COV_NAME: cov, BBOX_NAME: bbox}


def counts(head: DetectorHead, coverage: tuple[float, float]) -> dict[int, int]:
    (found,) = head.detections(outputs(coverage), [FRAME])
    return dict(collections.Counter(found.class_ids.tolist()))


def request(*thresholds: tuple[int, float], interval: int | None = None) -> SetParametersRequest:
    message = SetParametersRequest(
        thresholds=[ClassThreshold(class_id=k, pre_cluster_threshold=v) for k, v in thresholds]
    )
    if interval is not None:
        message.interval = interval
    return message


@dataclass
class Control:
    head: DetectorHead
    gate: IntervalGate
    bus: Bus
    registry: CollectorRegistry
    params: RuntimeParameters

    def stored(self) -> Parameters | None:
        return self.bus.newest(streams.parameters(PIPELINE), Parameters)

    def updates(self, result: str) -> float:
        value = self.registry.get_sample_value(
            "heron_inference_parameter_updates_total", {"result": result}
        )
        return 0.0 if value is None else value


def make_control(tmp_path: Path, bus: Bus | None = None, labels: str | None = None) -> Control:
    """Config: two classes, pre-cluster-threshold 0.5 for both, interval 0."""
    nvinfer = write_nvinfer(tmp_path, tmp_path / "m.onnx")
    if labels is not None:
        (tmp_path / "labels.txt").write_text(labels)
    config, _ = read_nvinfer(nvinfer)
    head = DetectorHead(config, INFO)
    gate = IntervalGate(config.property.interval)
    bus = bus or MemoryBus(MemoryStreams(), BusSettings(), registry=CollectorRegistry())
    registry = CollectorRegistry()
    store = bus.publisher(streams.parameters(PIPELINE), Parameters)
    params = RuntimeParameters(head, gate, store, updates_counter(registry), "det")
    return Control(head, gate, bus, registry, params)


@pytest.fixture
def control(tmp_path: Path) -> Control:
    return make_control(tmp_path)


def test_a_threshold_raised_to_one_removes_that_class_and_leaves_the_other(
    control: Control, caplog: pytest.LogCaptureFixture
) -> None:
    assert counts(control.head, (0.7, 0.7)) == {0: CELLS, 1: CELLS}
    with caplog.at_level(logging.INFO, logger="heron.inference.parameters"):
        answer = control.params.set(request((0, 1.0)))
    assert (answer.code, answer.message) == (ReplyCode.OK, "")
    assert counts(control.head, (0.7, 0.7)) == {1: CELLS}
    assert caplog.messages == [
        "parameters set: pre-cluster-threshold {0: 1}; in force: pre-cluster-threshold {0: 1}"
    ]
    assert control.updates("applied") == 1


def test_a_lowered_threshold_adds_that_class(control: Control) -> None:
    assert counts(control.head, (0.7, 0.35)) == {0: CELLS}
    assert control.params.set(request((1, 0.3))).code == ReplyCode.OK
    assert counts(control.head, (0.7, 0.35)) == {0: CELLS, 1: CELLS}


def test_thresholds_set_before_the_first_output_survive_the_heads_setup(control: Control) -> None:
    """The head builds its per-class parameters lazily from the first output it sees."""
    assert control.params.set(request((0, 1.0), (1, 0.3))).code == ReplyCode.OK
    assert counts(control.head, (0.7, 0.35)) == {1: CELLS}


def test_each_request_adds_to_the_parameters_in_force_and_stores_all_of_them(
    control: Control,
) -> None:
    control.params.set(request((0, 0.75)))
    control.params.set(request((1, 0.25), interval=3))
    control.params.set(request((0, 0.5)))  # class 0 again: its newest value wins
    stored = control.stored()
    assert stored is not None
    assert [(t.class_id, t.pre_cluster_threshold) for t in stored.thresholds] == [
        (0, 0.5),
        (1, 0.25),
    ]
    assert stored.HasField("interval") and stored.interval == 3
    assert stored.time.seconds > 0
    assert control.head.thresholds == {0: 0.5, 1: 0.25}
    assert control.gate.interval == 3


def test_the_bounds_themselves_are_accepted(control: Control) -> None:
    answer = control.params.set(request((0, 0.0), (1, 1.0), interval=MAX_INTERVAL))
    assert answer.code == ReplyCode.OK
    assert control.gate.interval == MAX_INTERVAL
    assert counts(control.head, (0.7, 0.7)) == {0: CELLS}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            request((0, 0.9), (2, 0.5), interval=5),
            "thresholds[1].class_id: 2 is not a class of the model (it has 2: 0..1)",
        ),
        (request((1, 1.5)), "thresholds[0].pre_cluster_threshold: 1.5 is not in [0, 1]"),
        (request((1, -0.25)), "thresholds[0].pre_cluster_threshold: -0.25 is not in [0, 1]"),
        (request((1, math.nan)), "thresholds[0].pre_cluster_threshold: nan is not in [0, 1]"),
        (request((1, math.inf)), "thresholds[0].pre_cluster_threshold: inf is not in [0, 1]"),
        (
            request((1, 0.3), (0, 0.3), (1, 0.4)),
            "thresholds[2].class_id: class 1 is set twice (also thresholds[0])",
        ),
        (
            request((1, 0.3), interval=MAX_INTERVAL + 1),
            "interval: 1001 is above 1000 (frames skipped between inferences of a stream)",
        ),
        (request(), "thresholds: nothing to set"),
    ],
)
def test_a_refused_request_names_the_field_and_changes_nothing(
    control: Control, bad: SetParametersRequest, message: str
) -> None:
    control.params.set(request((0, 0.6), interval=1))
    before = control.stored()
    answer = control.params.set(bad)
    assert (answer.code, answer.message) == (ReplyCode.INVALID_ARGUMENT, message)
    assert control.head.thresholds == pytest.approx({0: 0.6})
    assert control.gate.interval == 1
    assert control.stored() == before  # nothing new stored
    assert (control.updates("applied"), control.updates("refused")) == (1, 1)


def test_the_class_count_is_the_models_not_the_labels_files(tmp_path: Path) -> None:
    """NVIDIA's face-mask sample has three labels for two classes: class 2 does not exist."""
    control = make_control(tmp_path, labels="Mask\nNo-Mask\ndefault\n")
    assert len(control.head.labels) == 3
    refused = control.params.set(request((2, 0.5)))
    assert refused.message.startswith("thresholds[0].class_id: 2 is not a class")
    counts(control.head, (0.7, 0.7))  # the head has now seen the model's two channels
    assert control.params.set(request((2, 0.5))).code == ReplyCode.INVALID_ARGUMENT


def test_parameters_applied_but_not_stored_are_said_to_be_so(
    control: Control, monkeypatch: pytest.MonkeyPatch
) -> None:
    def bus_down(message: Parameters) -> str:
        raise BusUnavailableError("redis is away")

    monkeypatch.setattr(control.params.store, "publish", bus_down)
    answer = control.params.set(request((0, 1.0)))
    assert (answer.code, answer.message) == (
        ReplyCode.UNAVAILABLE,
        "parameters: applied but not stored for restarts: redis is away",
    )
    assert counts(control.head, (0.7, 0.7)) == {1: CELLS}


def test_only_set_parameters_is_answered(control: Control) -> None:
    assert control.params.handle(Command(add_source=SourceSpec(uri="rtsp://cam/1"))) is None
    assert control.params.handle(Command(remove_source="source-0")) is None
    answer = control.params.handle(Command(set_parameters=request(interval=2)))
    assert answer is not None and answer.code == ReplyCode.OK


def test_a_new_interval_restarts_every_streams_count(control: Control) -> None:
    gate = control.gate
    assert [gate.admit("a") for _ in range(3)] == [True] * 3
    control.params.set(request(interval=2))
    assert [gate.admit("a") for _ in range(4)] == [True, False, False, True]
    assert gate.admit("b") is True
    gate.admit("a")  # a is 1 frame into its period
    control.params.set(request(interval=1))  # its next frame is inferred: counts restart
    assert [gate.admit("a") for _ in range(3)] == [True, False, True]


def test_thresholds_alone_leave_the_interval_count_alone(control: Control) -> None:
    control.params.set(request(interval=2))
    assert control.gate.admit("a") is True
    control.params.set(request((0, 0.9)))
    assert [control.gate.admit("a") for _ in range(3)] == [False, False, True]


def test_a_restarted_instance_applies_the_stored_set(tmp_path: Path) -> None:
    first = make_control(tmp_path)
    first.params.set(request((0, 1.0), (1, 0.3), interval=4))
    again = make_control(tmp_path, first.bus)
    again.params.restore(again.stored())
    assert counts(again.head, (0.7, 0.35)) == {1: CELLS}
    assert again.gate.interval == 4
    assert again.updates("applied") == 1


def test_a_stored_set_the_model_refuses_is_ignored_with_a_warning(
    control: Control, caplog: pytest.LogCaptureFixture
) -> None:
    stored = Parameters(
        thresholds=[
            ClassThreshold(class_id=0, pre_cluster_threshold=0.9),
            ClassThreshold(class_id=3, pre_cluster_threshold=0.2),  # a model with 4 classes
        ],
        interval=2,
    )
    with caplog.at_level(logging.WARNING, logger="heron.inference.parameters"):
        control.params.restore(stored)
    (warning,) = caplog.messages
    assert warning.startswith("ignoring the stored parameters, model 'det' refuses them: ")
    assert "thresholds[1].class_id: 3 is not a class of the model" in warning
    assert control.head.thresholds == {}
    assert control.gate.interval == 0
    assert counts(control.head, (0.7, 0.7)) == {0: CELLS, 1: CELLS}
    assert control.updates("refused") == 1


def test_nothing_stored_is_nothing_to_restore(control: Control) -> None:
    control.params.restore(None)
    control.params.restore(Parameters())
    assert control.head.thresholds == {} and control.gate.interval == 0
    assert control.updates("applied") == control.updates("refused") == 0


def test_a_batch_is_decoded_with_the_old_thresholds_or_the_new_never_a_mix(
    control: Control,
) -> None:
    """The bus loop and the Detector API decode while a command swaps both classes'
    thresholds: every frame keeps both classes or neither."""
    stop = threading.Event()
    seen: set[tuple[tuple[int, int], ...]] = set()

    def decode() -> None:
        while not stop.is_set():
            seen.add(tuple(sorted(counts(control.head, (0.7, 0.7)).items())))

    readers = [threading.Thread(target=decode) for _ in range(2)]
    for reader in readers:
        reader.start()
    try:
        for i in range(200):
            value = 1.0 if i % 2 == 0 else 0.5
            control.params.set(request((0, value), (1, value)))
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    assert seen <= {((0, CELLS), (1, CELLS)), ()}
