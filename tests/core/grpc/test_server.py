"""The kit's server: errors mapped to status codes with no traceback on the wire, the bearer
token, deadlines, message size limits, health per service and reflection."""

from __future__ import annotations

import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from heron.core.grpc import (
    InvalidArgumentError,
    NotFoundError,
    RunningServer,
    UnavailableError,
    open_aio_channel,
    open_channel,
)
from heron.core.grpc.interceptor import INTERNAL_DETAIL
from heron.v1.detector_pb2 import DetectRequest, GetModelRequest, Image
from heron.v1.detector_pb2_grpc import DetectorStub
from pydantic import ValidationError

from tests.core.grpc.conftest import DETECTOR, FakeDetector, serving, settings, target

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def code_and_details(call: object) -> tuple[grpc.StatusCode, str]:
    assert isinstance(call, grpc.RpcError)
    return call.code(), call.details() or ""


@pytest.mark.parametrize(
    ("error", "code", "details"),
    [
        (
            InvalidArgumentError("images[2].encoded", "not JPEG or PNG"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "images[2].encoded: not JPEG or PNG",
        ),
        (NotFoundError("stream 'cam-9'"), grpc.StatusCode.NOT_FOUND, "stream 'cam-9'"),
        (
            UnavailableError("Triton does not answer"),
            grpc.StatusCode.UNAVAILABLE,
            "Triton does not answer",
        ),
        (KeyError("secret-internals"), grpc.StatusCode.INTERNAL, INTERNAL_DETAIL),
        (ZeroDivisionError("division by zero"), grpc.StatusCode.INTERNAL, INTERNAL_DETAIL),
    ],
)
def test_each_error_becomes_its_status_with_no_traceback(
    server: RunningServer,
    detector: FakeDetector,
    error: Exception,
    code: grpc.StatusCode,
    details: str,
) -> None:
    detector.error = error
    with open_channel(target(server)) as channel:
        stub = DetectorStub(channel)
        with pytest.raises(grpc.RpcError) as unary:
            stub.GetModel(GetModelRequest(), timeout=5)
        with pytest.raises(grpc.RpcError) as streaming:
            list(stub.DetectStream(iter([DetectRequest()]), timeout=5))
    for raised in (unary.value, streaming.value):
        assert code_and_details(raised) == (code, details)
        assert "Traceback" not in details and "secret" not in (raised.details() or "")


def test_the_handler_reads_the_callers_deadline(server: RunningServer) -> None:
    with open_channel(target(server)) as channel:
        reply = DetectorStub(channel).Detect(DetectRequest(), timeout=2.0)
    # gRPC sends the timeout rounded up to its wire units: a hair over 2 s may arrive.
    assert 0 < float(reply.model_version) <= 2.05


def test_a_call_past_its_deadline_is_deadline_exceeded(
    server: RunningServer, detector: FakeDetector
) -> None:
    detector.before_answer = lambda: time.sleep(0.5)
    with open_channel(target(server)) as channel, pytest.raises(grpc.RpcError) as e:
        DetectorStub(channel).GetModel(GetModelRequest(), timeout=0.1)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_a_message_over_the_limit_is_resource_exhausted(detector: FakeDetector) -> None:
    big = DetectRequest(images=[Image(id="big", encoded=b"\0" * (2 * 1024 * 1024))])
    with serving(settings(max_receive_message_mb=1), detector) as running:
        with open_channel(target(running)) as channel, pytest.raises(grpc.RpcError) as e:
            DetectorStub(channel).Detect(big, timeout=5)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        small = DetectRequest(images=[Image(id="small", encoded=b"\0" * 1000)])
        with open_channel(target(running)) as channel:
            assert DetectorStub(channel).Detect(small, timeout=5).results[0].id == "small"


def test_the_token_is_required_except_for_health(detector: FakeDetector) -> None:
    with serving(settings(token="s3cret-token"), detector) as running:
        for token in (None, "wrong", "s3cret-tokeN"):
            with open_channel(target(running), token=token) as channel:
                with pytest.raises(grpc.RpcError) as e:
                    DetectorStub(channel).GetModel(GetModelRequest(), timeout=5)
                assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
                assert "s3cret" not in (e.value.details() or "")
                health = health_pb2_grpc.HealthStub(channel)
                reply = health.Check(health_pb2.HealthCheckRequest(service=DETECTOR), timeout=5)
                assert reply.status == SERVING
        with open_channel(target(running), token="s3cret-token") as channel:
            assert DetectorStub(channel).GetModel(GetModelRequest(), timeout=5).name == "fake"


def test_the_asyncio_channel_carries_the_token(detector: FakeDetector) -> None:
    import asyncio

    async def call(port: int) -> str:
        async with open_aio_channel(f"127.0.0.1:{port}", token="t0ken") as channel:
            reply = await DetectorStub(channel).GetModel(GetModelRequest(), timeout=5)
            return str(reply.name)

    with serving(settings(token="t0ken"), detector) as running:
        assert asyncio.run(call(running.port)) == "fake"


def test_health_per_service(server: RunningServer) -> None:
    with open_channel(target(server)) as channel:
        health = health_pb2_grpc.HealthStub(channel)

        def status(service: str) -> int:
            return int(
                health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
            )

        assert status("") == SERVING and status(DETECTOR) == SERVING
        server.set_serving(DETECTOR, False)
        assert status(DETECTOR) == NOT_SERVING and status("") == SERVING
        server.set_serving(DETECTOR, True)
        assert status(DETECTOR) == SERVING
        with pytest.raises(grpc.RpcError) as e:
            status("heron.v1.Nothing")
        assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_the_services(server: RunningServer) -> None:
    with open_channel(target(server)) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = set(database.get_services())
        assert {DETECTOR, "grpc.health.v1.Health"} <= services
        method = database.FindFileContainingSymbol(DETECTOR)
        assert method.package == "heron.v1"


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_reflection_answers_under_both_names(server: RunningServer, version: str) -> None:
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    with open_channel(target(server)) as channel:
        call = channel.stream_stream(
            f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        [reply] = list(call(iter([request]), timeout=5))
        names = {s.name for s in reply.list_services_response.service}
        assert {DETECTOR, f"grpc.reflection.{version}.ServerReflection"} <= names
        symbol = reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="grpc.reflection.v1.ServerReflection"
        )
        [described] = list(call(iter([symbol]), timeout=5))
        assert described.file_descriptor_response.file_descriptor_proto


def test_a_taken_port_is_an_os_error(server: RunningServer, detector: FakeDetector) -> None:
    taken = settings(listen=f"127.0.0.1:{server.port}")
    with pytest.raises(OSError, match=f"127.0.0.1:{server.port}"), serving(taken, detector):
        pass


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"listen": "50051"}, "listen"),
        ({"listen": "host:99999"}, "listen"),
        ({"max_receive_message_mb": 0}, "max_receive_message_mb"),
        ({"token": ""}, "token"),
        ({"tls": {"cert_file": "a.crt"}}, "tls.key_file"),
        ({"listen_on": "x"}, "listen_on"),
    ],
)
def test_bad_settings_name_the_field(fields: dict[str, object], named: str) -> None:
    with pytest.raises(ValidationError) as e:
        settings(**fields)
    assert named in str(e.value)
