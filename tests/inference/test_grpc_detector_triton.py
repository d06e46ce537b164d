"""The Detector service over a Triton backend: health follows Triton (the real tritonserver of
the nvidia-pytriton wheel), Detect answers UNAVAILABLE while it is down and works again after."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse
from grpc_health.v1.health_pb2_grpc import HealthStub
from heron.core import streams
from heron.core.grpc.channel import open_channel
from heron.inference import detector_server
from heron.inference.grpc_api import SERVICE_NAME
from heron.v1.detector_pb2 import DetectRequest, GetModelRequest
from heron.v1.detector_pb2_grpc import DetectorStub
from heron.v1.frame_pb2 import FrameRef

from tests.inference.conftest import ExportedDetector, write_nvinfer, write_pipeline
from tests.inference.harness import Harness
from tests.inference.test_grpc_detector import ATTRS, STREAM, as_tuples_all, generated, raw
from tests.inference.test_triton import MAX_BATCH, MODEL, start_triton

SERVING = HealthCheckResponse.SERVING
NOT_SERVING = HealthCheckResponse.NOT_SERVING


def wait_for(done: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.1)


def served_by(redis_url: str, tmp_path: Path, nvinfer: Path, backend: dict[str, Any]) -> Harness:
    """A service on Triton with the Detector on a free port (not started)."""
    return Harness(
        redis_url,
        write_pipeline(tmp_path, nvinfer),
        tmp_path,
        input="frames",
        frame_streams=[STREAM],
        backend=backend,
        grpc={"listen": "127.0.0.1:0"},
    )


def test_health_and_detect_follow_triton(
    tmp_path: Path, redis_url: str, detector: ExportedDetector
) -> None:
    server = start_triton(tmp_path / "triton", detector)
    nvinfer = write_nvinfer(tmp_path, detector.onnx, class_attrs=ATTRS)
    backend = {"kind": "triton", "url": server.grpc_url, "model_name": MODEL,
               "ready_timeout_s": 30}  # fmt: skip
    h = served_by(redis_url, tmp_path, nvinfer, backend)
    channel: grpc.Channel | None = None
    try:
        h.service.start()
        assert h.service.api is not None
        channel = open_channel(f"127.0.0.1:{h.service.api.port}")
        health, stub = HealthStub(channel), DetectorStub(channel)

        def status(service: str = SERVICE_NAME) -> int:
            return int(health.Check(HealthCheckRequest(service=service), timeout=5).status)

        request = DetectRequest(images=[raw(generated((224, 128), n)) for n in range(6)])
        assert status() == status("") == SERVING
        first = as_tuples_all(stub.Detect(request, timeout=30))
        assert any(objects for *_, objects in first)
        model = stub.GetModel(GetModelRequest(), timeout=5)
        assert (model.backend, model.precision) == ("triton", "fp32")
        assert model.max_batch_size == min(4, MAX_BATCH)  # nvinfer batch-size, Triton's max

        server.kill()
        wait_for(lambda: status() == NOT_SERVING, timeout=10)  # the watcher's probe
        assert status("") == NOT_SERVING
        with pytest.raises(grpc.RpcError) as e:
            stub.Detect(request, timeout=30)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "the model cannot serve now, retry later: Triton at" in e.value.details()
        assert stub.GetModel(GetModelRequest(), timeout=5).name == MODEL  # known without it

        server.start()
        wait_for(lambda: status() == SERVING, timeout=30)
        assert as_tuples_all(stub.Detect(request, timeout=30)) == first
    finally:
        if channel is not None:
            channel.close()
        h.close()
        server.stop()


def test_call_outcomes_turn_health_between_polls(
    tmp_path: Path, redis_url: str, detector: ExportedDetector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the watcher's poll an hour away, a failed Detect says NOT_SERVING at once, and the
    bus loop's first success after Triton's restart says SERVING."""
    monkeypatch.setattr(detector_server, "POLL_S", 3600.0)
    server = start_triton(tmp_path / "triton", detector)
    nvinfer = write_nvinfer(tmp_path, detector.onnx, class_attrs=ATTRS)
    backend = {"kind": "triton", "url": server.grpc_url, "model_name": MODEL}
    h = served_by(redis_url, tmp_path, nvinfer, backend)
    channel: grpc.Channel | None = None
    try:
        h.service.start()
        assert h.service.api is not None
        channel = open_channel(f"127.0.0.1:{h.service.api.port}")
        health, stub = HealthStub(channel), DetectorStub(channel)

        def status() -> int:
            return int(health.Check(HealthCheckRequest(service=SERVICE_NAME), timeout=5).status)

        server.kill()
        assert status() == SERVING  # nobody has asked the backend yet
        with pytest.raises(grpc.RpcError) as e:
            stub.Detect(DetectRequest(images=[raw(np.zeros((8, 8, 3), np.uint8))]), timeout=30)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        assert status() == NOT_SERVING
        server.start()
        publisher = h.bus.publisher(streams.frames(STREAM), FrameRef)
        ref = FrameRef(stream_id=STREAM, frame_number=0)
        publisher.publish(h.store.store(generated((224, 128)), ref, "shm"))
        h.run_until(lambda: len(h.metadata()) == 1, timeout=40)  # retried until Triton is back
        assert status() == SERVING
    finally:
        if channel is not None:
            channel.close()
        h.close()
        server.stop()
