"""A real gRPC server of the kit on a free port, serving a fake Detector whose answers (or
errors) each test sets, and certificates made for the session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import grpc
import pytest
from heron.core.grpc import GrpcServerSettings, RunningServer, ServiceBinding, start_server
from heron.v1 import detector_pb2_grpc
from heron.v1.detector_pb2 import (
    DetectRequest,
    DetectResponse,
    GetModelRequest,
    ImageDetections,
    ModelInfo,
)

from tests.core.grpc.certs import Certs, make_certs

DETECTOR = "heron.v1.Detector"


class FakeDetector(detector_pb2_grpc.DetectorServicer):
    """GetModel answers `model` or raises `error`; Detect answers one result per image and
    says in `model_version` how long the call had left (the deadline as the handler sees it)."""

    def __init__(self) -> None:
        self.model = ModelInfo(name="fake", version="1", labels=["Mask", "No_Mask"])
        self.error: Exception | None = None
        self.before_answer: Callable[[], None] = lambda: None

    def GetModel(  # noqa: N802
        self, request: GetModelRequest, context: grpc.ServicerContext
    ) -> ModelInfo:
        self.before_answer()
        if self.error is not None:
            raise self.error
        return self.model

    def Detect(  # noqa: N802
        self, request: DetectRequest, context: grpc.ServicerContext
    ) -> DetectResponse:
        self.before_answer()
        remaining = context.time_remaining()
        results = [ImageDetections(id=image.id) for image in request.images]
        return DetectResponse(results=results, model_version=f"{remaining:.3f}")

    def DetectStream(  # noqa: N802
        self, requests: Iterator[DetectRequest], context: grpc.ServicerContext
    ) -> Iterator[DetectResponse]:
        for request in requests:
            if self.error is not None:
                raise self.error
            yield DetectResponse(results=[ImageDetections(id=i.id) for i in request.images])


@pytest.fixture
def detector() -> FakeDetector:
    return FakeDetector()


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@contextmanager
def serving(settings: GrpcServerSettings, detector: FakeDetector) -> Iterator[RunningServer]:
    binding = ServiceBinding(
        DETECTOR, lambda server: detector_pb2_grpc.add_DetectorServicer_to_server(detector, server)
    )
    running = start_server(settings, [binding])
    try:
        yield running
    finally:
        running.stop()


def settings(**fields: object) -> GrpcServerSettings:
    """Plaintext on a free loopback port unless told otherwise; no grace: tests stop at once."""
    return GrpcServerSettings.model_validate({"listen": "127.0.0.1:0", "grace_s": 0} | fields)


@pytest.fixture
def server(detector: FakeDetector) -> Iterator[RunningServer]:
    with serving(settings(), detector) as running:
        yield running


def target(running: RunningServer, host: str = "127.0.0.1") -> str:
    return f"{host}:{running.port}"


__all__ = ["DETECTOR", "FakeDetector", "serving", "settings", "target"]
