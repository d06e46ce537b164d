"""heron.v1.Pipeline on a real Redis and a real gRPC port. The stages are stand-ins that follow
the real command stream (heron.core.commands) and report as ingest and inference do, so these
tests pin what the control service does with what the stages say; tests/e2e runs the real
stages."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from heron.core import streams
from heron.core.bus import RedisBus
from heron.core.commands import CommandFollower, ReplyCode, reply
from heron.core.grpc import open_channel
from heron.v1 import control_pb2 as pb
from heron.v1.commands_pb2 import Command, CommandReply
from heron.v1.control_pb2_grpc import PipelineStub
from heron.v1.stream_pb2 import SourceSpec
from prometheus_client import CollectorRegistry

from tests.control.control_harness import (
    Control,
    Metadata,
    control,
    heartbeat,
    new_pipeline,
    sources_report,
    wait_until,
)

Handler = Callable[[Command], CommandReply | None]


@pytest.fixture
def pipeline() -> str:
    return new_pipeline()


@pytest.fixture
def bus(redis_url: str) -> Iterator[RedisBus]:
    made = RedisBus.from_url(redis_url, registry=CollectorRegistry())
    yield made
    made.close()


@pytest.fixture
def server(redis_url: str, pipeline: str) -> Iterator[Control]:
    api = {
        "command_timeout_s": 1.0,
        "model_load_timeout_s": 2.0,
        "report_stale_s": 2.0,
        "heartbeat_stale_s": 1.0,
    }
    with control(redis_url, pipeline, pipeline_api=api) as running:
        yield running


@pytest.fixture
def stub(server: Control) -> Iterator[PipelineStub]:
    with open_channel(f"127.0.0.1:{server.port}") as channel:
        yield PipelineStub(channel)


@contextmanager
def stage(
    bus: RedisBus, pipeline: str, service: str, instance: str, handle: Handler
) -> Iterator[None]:
    follower = CommandFollower(bus, pipeline, service=service, instance=instance, handle=handle)
    follower.start()
    try:
        yield
    finally:
        follower.stop()


def ingest(command: Command) -> CommandReply | None:
    """Adds anything with a URI as source-7; knows only cam-0."""
    kind = command.WhichOneof("command")
    if kind == "add_source":
        if command.add_source.stream_id == "cam-0":
            return reply(ReplyCode.ALREADY_EXISTS, "source.stream_id: cam-0 is already a source")
        answer = reply(ReplyCode.OK)
        answer.source.source.CopyFrom(command.add_source)
        answer.source.source.stream_id = command.add_source.stream_id or "source-7"
        answer.source.state = pb.SOURCE_STATE_CONNECTING
        return answer
    if kind == "remove_source":
        if command.remove_source != "cam-0":
            return reply(ReplyCode.NOT_FOUND, f"stream_id: no source {command.remove_source}")
        answer = reply(ReplyCode.OK)
        answer.source.frames = 250
        answer.source.state = pb.SOURCE_STATE_REMOVED
        return answer
    return None


def inference(command: Command) -> CommandReply | None:
    if command.WhichOneof("command") != "set_parameters":
        return None
    for i, item in enumerate(command.set_parameters.thresholds):
        if item.class_id >= 2:
            return reply(ReplyCode.INVALID_ARGUMENT, f"thresholds[{i}].class_id: 2 classes")
    return reply(ReplyCode.OK)


def error(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


# --- sources --------------------------------------------------------------------------------


def test_add_source_returns_what_ingest_started(
    stub: PipelineStub, bus: RedisBus, pipeline: str
) -> None:
    with stage(bus, pipeline, "ingest", "ingest-0", ingest):
        added = stub.AddSource(pb.AddSourceRequest(source=SourceSpec(uri="rtsp://cam/7")))
        refused = error(
            lambda: stub.AddSource(
                pb.AddSourceRequest(source=SourceSpec(uri="rtsp://x", stream_id="cam-0"))
            )
        )
    assert (added.source.stream_id, added.source.uri) == ("source-7", "rtsp://cam/7")
    assert added.state == pb.SOURCE_STATE_CONNECTING
    assert refused.code() == grpc.StatusCode.ALREADY_EXISTS
    assert refused.details() == "source.stream_id: cam-0 is already a source"


def test_add_source_without_a_uri_is_refused_before_any_stage_hears_of_it(
    stub: PipelineStub, bus: RedisBus, pipeline: str
) -> None:
    heard: list[Command] = []

    def listening(command: Command) -> CommandReply | None:
        heard.append(command)
        return None

    with stage(bus, pipeline, "ingest", "ingest-0", listening):
        refused = error(lambda: stub.AddSource(pb.AddSourceRequest(source=SourceSpec(uri=" "))))
    assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (refused.details() or "").startswith("source.uri: required")
    assert heard == []


def test_file_sources_at_run_time_need_a_media_root_and_stay_inside_it(
    redis_url: str, bus: RedisBus, pipeline: str, tmp_path: Path
) -> None:
    media = tmp_path / "media"
    media.mkdir()
    (media / "door.mp4").write_bytes(b"clip")
    (media / "escape.mp4").symlink_to("/etc/passwd")
    heard: list[str] = []

    def listening(command: Command) -> CommandReply | None:
        heard.append(command.add_source.uri)
        return ingest(command)

    def add(stub: PipelineStub, uri: str) -> pb.SourceStatus:
        answer: pb.SourceStatus = stub.AddSource(pb.AddSourceRequest(source=SourceSpec(uri=uri)))
        return answer

    api = {"command_timeout_s": 1.0, "media_roots": [str(media)]}
    with (
        stage(bus, pipeline, "ingest", "ingest-0", listening),
        control(redis_url, pipeline) as closed,
        control(redis_url, pipeline, pipeline_api=api) as open_,
        open_channel(f"127.0.0.1:{closed.port}") as closed_channel,
        open_channel(f"127.0.0.1:{open_.port}") as open_channel_,
    ):
        by_default = error(lambda: add(PipelineStub(closed_channel), f"file://{media}/door.mp4"))
        allowed = PipelineStub(open_channel_)
        added = add(allowed, f"file://{media}/door.mp4")
        refused = {
            uri: error(functools.partial(add, allowed, uri))
            for uri in (
                "file:///etc/shadow",
                f"file://{media}/../etc/passwd",
                f"file://{media}/escape.mp4",
                "lavfi://movie=/etc/shadow",
            )
        }
        live = add(allowed, "rtsp://cam/7")
    assert by_default.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "set pipeline_api.media_roots" in (by_default.details() or "")
    assert added.source.uri == f"file://{media}/door.mp4"
    for uri, refusal in refused.items():
        assert refusal.code() == grpc.StatusCode.INVALID_ARGUMENT, uri
        assert (refusal.details() or "").startswith("source.uri: "), uri
    assert live.source.uri == "rtsp://cam/7"
    # Ingest heard only what was allowed: nothing refused reached the bus.
    assert heard == [f"file://{media}/door.mp4", "rtsp://cam/7"]


def test_without_ingest_a_change_is_unavailable_in_time_and_never_applied_later(
    stub: PipelineStub, bus: RedisBus, pipeline: str
) -> None:
    started = time.monotonic()
    source = SourceSpec(uri="rtsp://cam/9")
    refused = error(lambda: stub.AddSource(pb.AddSourceRequest(source=source)))
    assert refused.code() == grpc.StatusCode.UNAVAILABLE
    assert "no ingest service answered in time; nothing was changed" in (refused.details() or "")
    assert time.monotonic() - started < 3.0
    applied: list[Command] = []
    follower = CommandFollower(
        bus, pipeline, service="ingest", instance="late", handle=applied.append
    )
    assert follower.poll() == 0 and applied == []


def test_a_call_deadline_shorter_than_the_command_timeout_is_kept(stub: PipelineStub) -> None:
    started = time.monotonic()
    refused = error(
        lambda: stub.RemoveSource(pb.RemoveSourceRequest(stream_id="cam-0"), timeout=0.3)
    )
    assert refused.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    assert time.monotonic() - started < 0.9


def test_remove_source_says_how_many_frames_it_published(
    stub: PipelineStub, bus: RedisBus, pipeline: str
) -> None:
    with stage(bus, pipeline, "ingest", "ingest-0", ingest):
        removed = stub.RemoveSource(pb.RemoveSourceRequest(stream_id="cam-0"))
        unknown = error(lambda: stub.RemoveSource(pb.RemoveSourceRequest(stream_id="cam-9")))
    empty = error(lambda: stub.RemoveSource(pb.RemoveSourceRequest()))
    assert removed.frames == 250
    assert (unknown.code(), unknown.details()) == (
        grpc.StatusCode.NOT_FOUND,
        "stream_id: no source cam-9",
    )
    assert (empty.code(), empty.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "stream_id: required",
    )


def test_sources_come_from_ingests_newest_report(
    stub: PipelineStub, bus: RedisBus, pipeline: str
) -> None:
    missing = error(lambda: stub.ListSources(pb.ListSourcesRequest()))
    sources_report(bus, pipeline)
    listed = stub.ListSources(pb.ListSourcesRequest()).sources
    got = stub.GetSource(pb.GetSourceRequest(stream_id="cam-0"))
    unknown = error(lambda: stub.GetSource(pb.GetSourceRequest(stream_id="cam-9")))
    sources_report(bus, pipeline, age_s=30)
    stale = error(lambda: stub.ListSources(pb.ListSourcesRequest()))
    assert missing.code() == grpc.StatusCode.UNAVAILABLE
    assert "no ingest has reported sources" in (missing.details() or "")
    assert [(s.source.stream_id, s.state, s.frames) for s in listed] == [
        ("cam-0", pb.SOURCE_STATE_PLAYING, 100)
    ]
    assert got == listed[0]
    assert unknown.code() == grpc.StatusCode.NOT_FOUND
    assert stale.code() == grpc.StatusCode.UNAVAILABLE
    assert "is 30 s old" in (stale.details() or "")


# --- status ---------------------------------------------------------------------------------


def test_status_shows_services_models_sources_and_rates(
    server: Control, stub: PipelineStub, bus: RedisBus, pipeline: str, redis_url: str
) -> None:
    heartbeat(bus, pipeline, "inference", "inference-0", model_name="m")
    # Silent past heartbeat_stale_s:
    heartbeat(bus, pipeline, "tracker", "tracker-0", age_s=5, model_name="m")
    sources_report(bus, pipeline)
    wait_until(lambda: len(server.service.board.services()) == 2)
    metadata = Metadata(redis_url, pipeline)
    metadata.publish(range(10), "cam-0")
    metadata.close()
    wait_until(lambda: bool(server.service.board.rates()))
    status = stub.GetStatus(pb.GetStatusRequest())
    assert status.pipeline == pipeline
    shown = [(s.name, s.instance, s.serving, s.model_name, s.detail) for s in status.services]
    assert shown == [
        ("inference", "inference-0", True, "m", ""),
        ("tracker", "tracker-0", False, "m", "no heartbeat for 5 s"),
    ]
    assert [s.source.stream_id for s in status.sources] == ["cam-0"]
    assert [(r.stream_id, r.fps) for r in status.rates] == [("cam-0", pytest.approx(2.0))]


def test_watch_status_streams_at_the_interval_asked(stub: PipelineStub) -> None:
    started = time.monotonic()
    call = stub.WatchStatus(pb.WatchStatusRequest(interval_seconds=0.2), timeout=10)
    first = [next(call) for _ in range(3)]
    call.cancel()
    assert 0.35 < time.monotonic() - started < 2.0
    assert all(s.HasField("time") for s in first)
    refused = error(lambda: next(stub.WatchStatus(pb.WatchStatusRequest(interval_seconds=0.01))))
    assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (refused.details() or "").startswith("interval_seconds: expected 0.1 to 60")


# --- parameters -----------------------------------------------------------------------------


def test_set_parameters_waits_for_every_serving_inference_instance(
    server: Control, stub: PipelineStub, bus: RedisBus, pipeline: str
) -> None:
    heartbeat(bus, pipeline, "inference", "inference-0", model_name="m")
    heartbeat(bus, pipeline, "inference", "inference-1", model_name="m")
    wait_until(lambda: len(server.service.board.serving("inference")) == 2)
    request = pb.SetParametersRequest(
        thresholds=[pb.ClassThreshold(class_id=1, pre_cluster_threshold=0.6)], interval=2
    )
    with (
        stage(bus, pipeline, "inference", "inference-0", inference),
        stage(bus, pipeline, "inference", "inference-1", inference),
    ):
        stub.SetParameters(request)
    # Alive, but deaf to commands:
    heartbeat(bus, pipeline, "inference", "inference-1", model_name="m")
    with stage(bus, pipeline, "inference", "inference-0", inference):
        partly = error(lambda: stub.SetParameters(request))
    assert partly.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert partly.details() == (
        "applied by inference-0; no answer from inference-1 in time "
        "(an instance applies the stored parameters when it restarts)"
    )


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.SetParametersRequest(), "thresholds: nothing to set"),
        (
            pb.SetParametersRequest(
                thresholds=[pb.ClassThreshold(class_id=0, pre_cluster_threshold=1.5)]
            ),
            "thresholds[0].pre_cluster_threshold: expected 0 to 1, got 1.5",
        ),
        (
            pb.SetParametersRequest(
                thresholds=[pb.ClassThreshold(class_id=5, pre_cluster_threshold=0.5)]
            ),
            "thresholds[0].class_id: 2 classes",
        ),
    ],
)
def test_set_parameters_refusals_name_the_field(
    stub: PipelineStub, bus: RedisBus, pipeline: str, request_: pb.SetParametersRequest, field: str
) -> None:
    with stage(bus, pipeline, "inference", "inference-0", inference):
        refused = error(lambda: stub.SetParameters(request_))
    assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (refused.details() or "").startswith(field)


def test_set_parameters_without_inference_is_unavailable(stub: PipelineStub) -> None:
    request = pb.SetParametersRequest(interval=1)
    refused = error(lambda: stub.SetParameters(request))
    assert refused.code() == grpc.StatusCode.UNAVAILABLE
    assert "no inference service answered in time" in (refused.details() or "")


# --- model versions -------------------------------------------------------------------------


def versions_stage(command: Command) -> CommandReply | None:
    """Knows versions 1 and 2 of model `m`; routes as asked."""
    if command.WhichOneof("command") != "set_model_versions":
        return None
    asked = command.set_model_versions
    named = {asked.default_version or "1", *asked.stream_versions.values()}
    if named - {"1", "2"}:
        return reply(ReplyCode.NOT_FOUND, f"version {max(named)}: /repo/m/9/model.onnx")
    answer = reply(ReplyCode.OK)
    answer.model_versions.CopyFrom(
        pb.ModelVersions(
            model_name="m",
            config_version="1",
            default_version=asked.default_version,
            stream_versions=asked.stream_versions,
            loaded=sorted(named | {"1"}),
            requested_by=asked.requested_by,
        )
    )
    return answer


def test_set_model_versions_returns_the_routing_every_instance_applied(
    server: Control, stub: PipelineStub, bus: RedisBus, pipeline: str
) -> None:
    heartbeat(bus, pipeline, "inference", "inference-0", model_name="m", model_version="1")
    heartbeat(bus, pipeline, "inference", "inference-1", model_name="m", model_version="1")
    wait_until(lambda: len(server.service.board.serving("inference")) == 2)
    request = pb.SetModelVersionsRequest(stream_versions={"cam-0": "2"}, requested_by="canary")
    with (
        stage(bus, pipeline, "inference", "inference-0", versions_stage),
        stage(bus, pipeline, "inference", "inference-1", versions_stage),
    ):
        routing = stub.SetModelVersions(request)
        missing = error(
            lambda: stub.SetModelVersions(pb.SetModelVersionsRequest(default_version="9"))
        )
    assert (dict(routing.stream_versions), list(routing.loaded)) == ({"cam-0": "2"}, ["1", "2"])
    assert (missing.code(), missing.details()) == (
        grpc.StatusCode.NOT_FOUND,
        "version 9: /repo/m/9/model.onnx",
    )
    # Alive, but deaf to commands:
    heartbeat(bus, pipeline, "inference", "inference-1", model_name="m", model_version="1")
    with stage(bus, pipeline, "inference", "inference-0", versions_stage):
        partly = error(lambda: stub.SetModelVersions(request))
    assert partly.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert partly.details() == (
        "applied by inference-0; no answer from inference-1 in time "
        "(an instance applies the stored model versions when it restarts)"
    )


def test_a_malformed_routing_is_refused_before_any_stage_hears_of_it(
    stub: PipelineStub, bus: RedisBus, pipeline: str
) -> None:
    heard: list[Command] = []

    def listening(command: Command) -> CommandReply | None:
        heard.append(command)
        return None

    with stage(bus, pipeline, "inference", "inference-0", listening):
        refused = error(
            lambda: stub.SetModelVersions(pb.SetModelVersionsRequest(stream_versions={"cam-0": ""}))
        )
    assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (refused.details() or "").startswith(
        "stream_versions['cam-0']: expected a version, got an empty one"
    )
    assert heard == []


def test_set_model_versions_without_inference_is_unavailable(stub: PipelineStub) -> None:
    refused = error(lambda: stub.SetModelVersions(pb.SetModelVersionsRequest(default_version="2")))
    assert refused.code() == grpc.StatusCode.UNAVAILABLE
    assert "no inference service answered in time" in (refused.details() or "")


def test_get_model_versions_reads_the_stored_routing_else_a_heartbeat(
    server: Control, stub: PipelineStub, bus: RedisBus, pipeline: str
) -> None:
    nothing = error(lambda: stub.GetModelVersions(pb.GetModelVersionsRequest()))
    assert nothing.code() == grpc.StatusCode.UNAVAILABLE
    assert "no model versions were set" in (nothing.details() or "")

    heartbeat(bus, pipeline, "inference", "inference-0", model_name="m", model_version="1")
    wait_until(lambda: bool(server.service.board.serving("inference")))
    never_set = stub.GetModelVersions(pb.GetModelVersionsRequest())
    assert (never_set.model_name, never_set.config_version, never_set.default_version) == (
        "m",
        "1",
        "1",
    )
    assert list(never_set.loaded) == ["1"]

    stored = pb.ModelVersions(
        model_name="m", config_version="1", default_version="2", loaded=["1", "2"]
    )
    bus.publisher(streams.model_versions(pipeline), pb.ModelVersions).publish(stored)
    assert stub.GetModelVersions(pb.GetModelVersionsRequest()) == stored
