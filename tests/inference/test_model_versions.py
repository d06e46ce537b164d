"""SetModelVersions below the service, with backends of numpy: what a request loads, when the
routing switches, what is refused (with the routing unchanged), when a version is closed, what
is stored and applied again at start, and that run-time thresholds reach every version."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Set
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from heron.core import streams
from heron.core.bus import Bus, BusSettings, MemoryBus, MemoryStreams
from heron.core.commands import ReplyCode
from heron.core.config.nvinfer import read_nvinfer
from heron.inference.backends.base import FloatArray, ModelInfo
from heron.inference.detector import DetectorHead
from heron.inference.interval import IntervalGate
from heron.inference.model_versions import (
    Routing,
    RuntimeModelVersions,
    Version,
    updates_counter,
)
from heron.inference.parameters import RuntimeParameters
from heron.inference.parameters import updates_counter as parameter_updates
from heron.inference.shared_backend import SharedBackend
from heron.inference.version_sources import TORCH_REFUSAL, Unversioned, VersionError
from heron.v1.commands_pb2 import Command, Parameters
from heron.v1.control_pb2 import ModelVersions, SetModelVersionsRequest
from prometheus_client import CollectorRegistry

from tests.inference.conftest import NET_H, NET_W, write_nvinfer
from tests.inference.detector import BBOX_NAME, COV_NAME
from tests.inference.test_parameters import FRAME, request

PIPELINE = "versions-test"
GRID = (NET_H // 16, NET_W // 16)


class FakeBackend:
    """Every cell of every image has coverage `coverage` for each of `classes` classes."""

    def __init__(
        self,
        version: str,
        *,
        classes: int = 2,
        shape: tuple[int, int, int] = (3, NET_H, NET_W),
        coverage: float = 0.7,
    ) -> None:
        self.info = ModelInfo("det", version, "input_1", shape, (COV_NAME, BBOX_NAME), 0)
        self.classes = classes
        self.coverage = coverage
        self.closed = False

    def model_info(self) -> ModelInfo:
        return self.info

    def infer(self, batch: FloatArray) -> dict[str, FloatArray]:
        n = len(batch)
        return {
            COV_NAME: np.full((n, self.classes, *GRID), self.coverage, np.float32),
            BBOX_NAME: np.full((n, 4 * self.classes, *GRID), 0.2, np.float32),
        }

    def ready(self) -> bool:
        return True

    def reset(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeSource:
    """Versions in `made`: version -> how to make its backend; others are NOT_FOUND."""

    makers: dict[str, Callable[[str], FakeBackend]]
    opened: dict[str, list[FakeBackend]] = field(default_factory=dict)
    prepared: list[set[str]] = field(default_factory=list)

    def prepare(self, versions: Set[str]) -> None:
        self.prepared.append(set(versions))
        for v in sorted(versions):
            if v != "1" and v not in self.makers:
                raise VersionError(
                    ReplyCode.NOT_FOUND, f"version {v}: /repo/det/{v}/model.onnx does not exist"
                )

    def open(self, version: str) -> FakeBackend:
        backend = self.makers[version](version)
        self.opened.setdefault(version, []).append(backend)
        return backend


@dataclass
class Rig:
    versions: RuntimeModelVersions
    source: FakeSource
    bus: Bus
    registry: CollectorRegistry
    config_backend: FakeBackend
    defaults: list[str]

    def stored(self) -> ModelVersions | None:
        return self.bus.newest(streams.model_versions(PIPELINE), ModelVersions)

    def updates(self, result: str) -> float:
        value = self.registry.get_sample_value(
            "heron_inference_model_version_updates_total", {"result": result}
        )
        return 0.0 if value is None else value

    def backend(self, version: str) -> FakeBackend:
        return self.source.opened[version][-1]


def make_rig(tmp_path: Path, source: FakeSource | None = None, bus: Bus | None = None) -> Rig:
    config, _ = read_nvinfer(write_nvinfer(tmp_path, tmp_path / "m.onnx"))
    backend = FakeBackend("1")
    first = Version("1", SharedBackend(backend), DetectorHead(config, backend.info))
    source = source or FakeSource(
        {
            "2": lambda v: FakeBackend(v, coverage=0.9),
            "3": lambda v: FakeBackend(v, classes=3),
            "4": lambda v: FakeBackend(v, shape=(3, NET_H * 2, NET_W * 2)),
        }
    )
    bus = bus or MemoryBus(MemoryStreams(), BusSettings(), registry=CollectorRegistry())
    registry = CollectorRegistry()
    defaults: list[str] = []
    versions = RuntimeModelVersions(
        first,
        backend.info,
        source=source,
        make_head=lambda info: DetectorHead(config, info),
        store=bus.publisher(streams.model_versions(PIPELINE), ModelVersions),
        updates=updates_counter(registry),
        on_default=defaults.append,
    )
    return Rig(versions, source, bus, registry, backend, defaults)


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return make_rig(tmp_path)


def versions(default: str = "", **stream_versions: str) -> SetModelVersionsRequest:
    """A request; stream ids are given with '_' for '-' (source_0 is source-0)."""
    streams_ = {k.replace("_", "-"): v for k, v in stream_versions.items()}
    return SetModelVersionsRequest(
        default_version=default, stream_versions=streams_, requested_by="test"
    )


def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_canary_loads_the_version_and_routes_its_stream_to_it(rig: Rig) -> None:
    answer = rig.versions.set(versions(source_1="2"))
    assert (answer.code, answer.message) == (ReplyCode.OK, "")
    got = answer.model_versions
    assert (got.model_name, got.config_version, got.default_version) == ("det", "1", "")
    assert dict(got.stream_versions) == {"source-1": "2"}
    assert (list(got.loaded), got.requested_by) == (["1", "2"], "test")
    assert rig.stored() == got
    routing = rig.versions.routing
    assert [routing.version_of(s) for s in ("source-0", "source-1")] == ["1", "2"]
    assert rig.source.prepared == [{"1", "2"}]
    assert rig.defaults == ["1"]  # the heartbeat's version: the default, still the config's
    assert rig.updates("applied") == 1


def test_a_promotion_keeps_the_config_model_loaded_and_names_the_new_default(rig: Rig) -> None:
    rig.versions.set(versions(source_1="2"))
    answer = rig.versions.set(versions("2"))
    assert list(answer.model_versions.loaded) == ["1", "2"]
    assert rig.versions.routing.version_of("source-1") == "2"
    assert rig.defaults[-1] == "2"
    assert len(rig.source.opened["2"]) == 1  # loaded once, kept across the two changes


def test_each_batch_sees_the_old_routing_or_the_new_one(rig: Rig) -> None:
    with rig.versions.use() as before:
        rig.versions.set(versions(source_0="2"))
        assert before.version_of("source-0") == "1"  # a batch under way keeps its routing
        assert before.versions["1"].backend.infer(np.zeros((1, 3, NET_H, NET_W), np.float32))
    with rig.versions.use() as after:
        assert after.version_of("source-0") == "2"
        assert set(after.versions) == {"1", "2"}


def test_a_version_no_longer_named_is_closed_once_no_batch_runs_it(rig: Rig) -> None:
    rig.versions.set(versions(source_0="2"))
    canary = rig.backend("2")
    with rig.versions.use() as running:
        answer = rig.versions.set(versions())  # roll back
        assert list(answer.model_versions.loaded) == ["1"]
        time.sleep(0.1)
        assert not canary.closed  # the batch running it is not done
        assert running.version_of("source-0") == "2"
    wait_until(lambda: canary.closed)
    assert not rig.config_backend.closed  # the config's model is never closed
    wait_until(lambda: rig.source.prepared[-1] == {"1"})  # unloaded at the source too


@pytest.mark.parametrize(
    ("request_", "code", "message"),
    [
        (
            versions(source_0="7"),
            ReplyCode.NOT_FOUND,
            "version 7: /repo/det/7/model.onnx does not exist",
        ),
        (
            versions(source_0="3"),
            ReplyCode.FAILED_PRECONDITION,
            "version 3 is not compatible with the config's model (version 1): its output "
            "'output_cov/Sigmoid' is 3 x 4 x 7 per image, the config's model's is 2 x 4 x 7 "
            "(classes x grid)",
        ),
        (
            versions("4"),
            ReplyCode.FAILED_PRECONDITION,
            "version 4 is not compatible with the config's model (version 1): its input is "
            "3 x 128 x 224 (C x H x W), the config's model takes 3 x 64 x 112",
        ),
        (
            versions(source_0=""),
            ReplyCode.INVALID_ARGUMENT,
            "stream_versions['source-0']: expected a version, got an empty one",
        ),
    ],
)
def test_a_refused_request_says_why_and_changes_nothing(
    rig: Rig, request_: SetModelVersionsRequest, code: ReplyCode, message: str
) -> None:
    rig.versions.set(versions(source_1="2"))
    before = rig.versions.routing
    answer = rig.versions.set(request_)
    assert answer.code == code
    assert answer.message.startswith(message)
    assert rig.versions.routing is before
    assert list(rig.stored().stream_versions.items()) == [("source-1", "2")]  # type: ignore[union-attr]
    assert rig.updates("refused") == 1
    for opened in rig.source.opened.get(request_.default_version or "3", []):
        assert opened.closed  # what was loaded for the refused request is closed again
    assert not rig.backend("2").closed


def test_a_caller_that_gave_up_while_it_loaded_gets_nothing_changed(rig: Rig) -> None:
    answer = rig.versions.set(versions("2"), given_up=lambda: True)
    assert answer.code == ReplyCode.DEADLINE_EXCEEDED
    assert "took longer than the caller waited; nothing was changed" in answer.message
    assert rig.versions.routing.default == "1"
    assert rig.backend("2").closed
    assert rig.stored() is None


def test_the_command_handler_takes_only_its_own_commands(rig: Rig) -> None:
    assert rig.versions.handle(Command(remove_source="source-0")) is None
    answer = rig.versions.handle(Command(set_model_versions=versions("2")))
    assert answer is not None and answer.code == ReplyCode.OK


def test_run_time_thresholds_reach_every_loaded_versions_head(rig: Rig) -> None:
    gate = IntervalGate(0)
    store = rig.bus.publisher(streams.parameters(PIPELINE), Parameters)
    params = RuntimeParameters(
        rig.versions, gate, store, parameter_updates(CollectorRegistry()), "det"
    )
    assert params.set(request((0, 0.95))).code == ReplyCode.OK  # before the version loads
    rig.versions.set(versions(source_0="2"))
    assert params.set(request((1, 0.95))).code == ReplyCode.OK  # after it loaded
    canary = rig.versions.routing.versions["2"]
    outputs = canary.backend.infer(np.zeros((1, 3, NET_H, NET_W), np.float32))
    (found,) = canary.head.detections(outputs, [FRAME])  # coverage 0.9 < both thresholds
    assert len(found) == 0
    assert canary.head.thresholds == pytest.approx({0: 0.95, 1: 0.95})
    assert rig.versions.config.head.thresholds == pytest.approx({0: 0.95, 1: 0.95})


def test_a_restarted_instance_applies_the_stored_routing(tmp_path: Path) -> None:
    bus = MemoryBus(MemoryStreams(), BusSettings(), registry=CollectorRegistry())
    first = make_rig(tmp_path, bus=bus)
    first.versions.set(versions("2", source_3="1"))
    again = make_rig(tmp_path, bus=bus)
    again.versions.restore(again.stored())
    routing = again.versions.routing
    assert (routing.default, routing.version_of("source-3")) == ("2", "1")
    assert again.defaults == ["2"]
    assert again.updates("applied") == 1


@pytest.mark.parametrize(
    ("stored", "why"),
    [
        (
            ModelVersions(model_name="det", config_version="1", default_version="9"),
            "version 9: /repo/det/9/model.onnx does not exist",
        ),
        (
            ModelVersions(model_name="other", config_version="1", default_version="2"),
            "it routes model 'other', this service serves 'det'",
        ),
    ],
)
def test_a_stored_routing_this_model_refuses_is_ignored(
    rig: Rig, caplog: pytest.LogCaptureFixture, stored: ModelVersions, why: str
) -> None:
    with caplog.at_level(logging.WARNING, logger="heron.inference.model_versions"):
        rig.versions.restore(stored)
    assert rig.versions.routing.default == "1"
    assert any(
        f"ignoring the stored model versions: {why}; every stream runs the config's version 1" in m
        for m in caplog.messages
    )
    assert rig.updates("refused") == 1


def test_a_backend_without_versions_refuses_any_other_than_the_config_s(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, source=Unversioned("1", TORCH_REFUSAL))  # type: ignore[arg-type]
    assert rig.versions.set(versions("1")).code == ReplyCode.OK  # the config's: nothing to load
    answer = rig.versions.set(versions(source_0="2"))
    assert (answer.code, answer.message) == (
        ReplyCode.FAILED_PRECONDITION,
        "version 2: backend torch serves one model file; run-time versions need onnxruntime "
        "or triton",
    )


def test_routing_names_real_versions() -> None:
    routing = Routing("1", "", {"source-0": "10", "source-1": "2"})
    assert [routing.version_of(s) for s in ("source-0", "source-1", "source-9")] == [
        "10",
        "2",
        "1",
    ]
    assert routing.named() == {"1", "2", "10"}
    assert str(Routing("1", "2", {"door": "1"})) == "default 2, door=1"
