"""Model versions at run time through a real inference service on ONNX Runtime and a real Redis,
with a model repository built here: `<tmp>/models/det/<version>/model.onnx`, the config's ONNX
being version 1. Version 1 finds class 0 in every grid cell and version 2 class 1, so a frame's
objects say which model ran it, not only its metadata. Commands go as the control service sends
them, and in the last test through a real control service's gRPC API and the client."""

from __future__ import annotations

import collections
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from heron.core import streams
from heron.core.commands import CommandSender, ReplyCode
from heron.v1.commands_pb2 import Command, CommandReply
from heron.v1.control_pb2 import ModelVersions, SetModelVersionsRequest
from heron.v1.detection_pb2 import FrameMetadata
from heron.v1.frame_pb2 import FrameBatch

from tests.control.control_harness import control
from tests.inference.conftest import NET_H, NET_W, write_nvinfer, write_pipeline
from tests.inference.harness import Harness

STREAMS = 3
CELLS = (NET_H // 16) * (NET_W // 16)
MODEL = "det"


@pytest.fixture
def pipeline(tmp_path: Path, version_files: dict[str, Path]) -> Path:
    """A pipeline whose nvinfer onnx-file is version 1 of a repository holding 1, 2 and 3."""
    for version, onnx in version_files.items():
        folder = tmp_path / "models" / MODEL / version
        folder.mkdir(parents=True)
        shutil.copy2(onnx, folder / "model.onnx")
    config = tmp_path / "models" / MODEL / "1" / "model.onnx"
    return write_pipeline(tmp_path, write_nvinfer(tmp_path, config), sources=STREAMS)


class Rig:
    """One started inference service (stepped by the test), and what the control service
    would send it."""

    def __init__(self, redis_url: str, pipeline: Path, tmp: Path, **overrides: Any) -> None:
        self.h = Harness(redis_url, pipeline, tmp, **overrides)
        self.h.service.start()
        self.batches = self.h.bus.publisher(streams.batches("default"), FrameBatch)
        self.sender = CommandSender(self.h.bus, "default")
        self.closed = False

    def set(self, default: str = "", **stream_versions: str) -> CommandReply:
        request = SetModelVersionsRequest(
            default_version=default,
            stream_versions={k.replace("_", "-"): v for k, v in stream_versions.items()},
            requested_by="test",
        )
        (answer,) = self.sender.send(Command(set_model_versions=request), timeout_s=10.0)
        return answer

    def frames(self, first: int, count: int) -> list[FrameMetadata]:
        """Publish batches `first` .. `first + count - 1` (a frame of every stream each) and
        step the service until their metadata is out; the metadata of those frames."""
        for number in range(first, first + count):
            self.batches.publish(self.h.batch(number, STREAMS))
        wanted = range(first, first + count)
        self.h.run_until(lambda: len(self._of(wanted)) == count * STREAMS)
        return self._of(wanted)

    def _of(self, numbers: range) -> list[FrameMetadata]:
        return [m for m in self.h.metadata() if m.frame.frame_number in numbers]

    def stored(self) -> ModelVersions | None:
        return self.h.bus.newest(streams.model_versions("default"), ModelVersions)

    def close(self) -> None:
        if not self.closed:  # a test that restarts the service closes it before the fixture
            self.closed = True
            self.h.close()


@pytest.fixture
def start(redis_url: str, pipeline: Path, tmp_path: Path) -> Iterator[Callable[[], Rig]]:
    """`start()`: a started service on the test's pipeline; closed at the end."""
    made: list[Rig] = []

    def make() -> Rig:
        made.append(Rig(redis_url, pipeline, tmp_path))
        return made[-1]

    yield make
    for rig in made:
        rig.close()


def runs(metas: list[FrameMetadata]) -> dict[str, set[tuple[str, str]]]:
    """Per stream: the (version, classes found) of its frames."""
    found: dict[str, set[tuple[str, str]]] = collections.defaultdict(set)
    for m in metas:
        classes = ",".join(str(k) for k in sorted({o.class_id for o in m.objects}))
        found[m.frame.stream_id].add((m.model_version, classes))
    return dict(found)


def test_a_canary_stream_runs_version_2_and_the_others_version_1(start: Callable[[], Rig]) -> None:
    rig = start()
    assert runs(rig.frames(0, 2)) == {f"source-{s}": {("1", "0")} for s in range(STREAMS)}

    answer = rig.set(source_1="2")
    assert (answer.code, answer.message) == (ReplyCode.OK, "")
    assert (answer.model_versions.model_name, answer.model_versions.config_version) == (MODEL, "1")
    assert list(answer.model_versions.loaded) == ["1", "2"]
    assert rig.stored() == answer.model_versions

    metas = rig.frames(2, 2)
    assert runs(metas) == {
        "source-0": {("1", "0")},
        "source-1": {("2", "1")},  # the batch was split: one chunk per version
        "source-2": {("1", "0")},
    }
    assert {m.model_name for m in metas} == {MODEL}
    # No frame lost: every published frame has exactly one metadata.
    counts = collections.Counter(
        (m.frame.stream_id, m.frame.frame_number) for m in rig.h.metadata()
    )
    assert counts == {(f"source-{s}", n): 1 for s in range(STREAMS) for n in range(4)}

    sample = rig.h.sample
    for name in ("frames", "inferred"):
        metric = f"heron_inference_stream_{name}_total"
        assert sample(metric, stream="source-1", version="2") == 2
        assert sample(metric, stream="source-1", version="1") == 2
        assert sample(metric, stream="source-0", version="1") == 4
    objects = "heron_inference_stream_objects_total"
    assert sample(objects, stream="source-1", version="2") == 2 * CELLS
    assert sample("heron_inference_stream_failures_total", stream="source-1", version="2") == 0
    assert sample("heron_inference_model_version_updates_total", result="applied") == 1


def test_a_missing_or_incompatible_version_is_refused_and_the_routing_stays(
    start: Callable[[], Rig],
) -> None:
    rig = start()
    assert rig.set(source_1="2").code == ReplyCode.OK
    stored = rig.stored()

    missing = rig.set(source_0="7", source_1="2")
    path = rig.h.settings.pipeline_config.parent / "models" / MODEL / "7" / "model.onnx"
    assert missing.code == ReplyCode.NOT_FOUND
    assert missing.message.startswith(f"version 7: {path} does not exist")

    incompatible = rig.set("3")
    assert incompatible.code == ReplyCode.FAILED_PRECONDITION
    assert incompatible.message == (
        "version 3 is not compatible with the config's model (version 1): its output "
        "'output_cov/Sigmoid' is 3 x 4 x 7 per image, the config's model's is 2 x 4 x 7 "
        "(classes x grid)"
    )

    assert rig.stored() == stored
    assert sorted(rig.h.service.versions.routing.versions) == ["1", "2"]
    assert runs(rig.frames(0, 1))["source-0"] == {("1", "0")}
    assert runs(rig.frames(1, 1))["source-1"] == {("2", "1")}
    assert rig.h.sample("heron_inference_model_version_updates_total", result="refused") == 2


def test_a_restart_applies_the_stored_routing_and_a_rollback_unloads(
    start: Callable[[], Rig],
) -> None:
    first = start()
    assert first.set("2", source_0="1").code == ReplyCode.OK
    first.close()

    again = start()
    assert runs(again.frames(0, 1)) == {
        "source-0": {("1", "0")},
        "source-1": {("2", "1")},
        "source-2": {("2", "1")},
    }
    assert again.h.ctx.status.model_version == "2"  # heartbeats name the default in force

    canary = again.h.service.versions.routing.versions["2"].backend.backend
    answer = again.set()  # roll back: every stream on the config's model
    assert list(answer.model_versions.loaded) == ["1"]
    deadline = time.monotonic() + 5
    while getattr(canary, "_session", None) is not None:  # closed once no batch runs it
        assert time.monotonic() < deadline, "version 2 was never unloaded"
        time.sleep(0.02)
    assert runs(again.frames(1, 1)) == {f"source-{s}": {("1", "0")} for s in range(STREAMS)}
    assert again.h.ctx.status.model_version == "1"


def test_set_and_get_model_versions_through_the_control_service(
    start: Callable[[], Rig], redis_url: str
) -> None:
    """The rig's service sends no heartbeats (nothing serves it), so before anything is set
    GetModelVersions has nothing to say; the stored routing answers after."""
    from heron.client import Client, NotFoundError, ServerUnavailableError

    rig = start()
    with control(redis_url, "default") as running, Client(f"127.0.0.1:{running.port}") as client:
        with pytest.raises(ServerUnavailableError, match="no model versions were set"):
            client.get_model_versions()
        routing = client.set_model_versions(stream_versions={"source-2": "2"}, requested_by="t")
        with pytest.raises(NotFoundError, match=r"version 9: .* does not exist"):
            client.set_model_versions(default_version="9")
        got = client.get_model_versions()
    assert (dict(routing.stream_versions), list(routing.loaded)) == ({"source-2": "2"}, ["1", "2"])
    assert (got.model_name, got.config_version, got.requested_by) == (MODEL, "1", "t")
    assert dict(got.stream_versions) == {"source-2": "2"}
    assert runs(rig.frames(0, 1))["source-2"] == {("2", "1")}
