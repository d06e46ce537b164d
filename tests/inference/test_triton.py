"""The Triton backend against the real tritonserver of the nvidia-pytriton wheel.

The model is the test detector's ONNX, run by ONNX Runtime inside Triton's python backend
(the wheel has no onnxruntime backend); so Triton's outputs must equal in-process ORT's.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from heron.core import streams
from heron.core.commands import ReplyCode
from heron.core.plan.settings.inference import TritonSettings
from heron.inference.backends.onnx_runtime import OnnxRuntimeBackend
from heron.inference.backends.triton_grpc import TritonBackend
from heron.inference.errors import BackendError, BackendUnavailableError
from heron.inference.version_sources import TritonVersions, VersionError
from heron.v1.frame_pb2 import FrameBatch

from tests.inference.conftest import NET_H, NET_W, ExportedDetector, write_nvinfer, write_pipeline
from tests.inference.detector import BBOX_NAME, COV_NAME
from tests.support.redis_server import free_port
from tests.support.triton_server import TritonServer, TritonUnavailableError, write_onnx_model

MODEL = "tiny_detectnet"
MAX_BATCH = 4


def start_triton(root: Path, detector: ExportedDetector) -> TritonServer:
    repository = root / "models"
    write_onnx_model(
        repository,
        MODEL,
        detector.onnx,
        input_name="input_1",
        input_dims=(3, NET_H, NET_W),
        outputs={COV_NAME: (2, NET_H // 16, NET_W // 16), BBOX_NAME: (8, NET_H // 16, NET_W // 16)},
        max_batch_size=MAX_BATCH,
    )
    try:
        server = TritonServer(repository, root)
    except TritonUnavailableError as e:
        pytest.skip(str(e))
    server.start()
    return server


@pytest.fixture(scope="module")
def triton(
    tmp_path_factory: pytest.TempPathFactory, detector: ExportedDetector
) -> Iterator[TritonServer]:
    server = start_triton(tmp_path_factory.mktemp("triton"), detector)
    yield server
    server.stop()


def settings(server: TritonServer, **overrides: Any) -> TritonSettings:
    return TritonSettings(url=server.grpc_url, model_name=MODEL, **overrides)


@pytest.mark.parametrize("shared_memory", [False, True])
@pytest.mark.parametrize("n", [1, 3, 6])  # 6 > max_batch_size: split in two requests
def test_triton_equals_onnxruntime(
    triton: TritonServer, detector: ExportedDetector, shared_memory: bool, n: int
) -> None:
    backend = TritonBackend(settings(triton, shared_memory=shared_memory))
    try:
        info = backend.connect()
        assert (info.input_shape, info.max_batch_size) == ((3, NET_H, NET_W), MAX_BATCH)
        batch = np.random.default_rng(n).random((n, 3, NET_H, NET_W), dtype=np.float32)
        got = backend.infer(batch)
        want = OnnxRuntimeBackend(detector.onnx).infer(batch)
        for name in want:
            np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-6)
    finally:
        backend.close()


def test_shared_memory_inputs_are_registered_with_the_server(triton: TritonServer) -> None:
    import tritonclient.grpc as grpcclient  # type: ignore[import-untyped,unused-ignore]

    backend = TritonBackend(settings(triton, shared_memory=True))
    client = grpcclient.InferenceServerClient(triton.grpc_url)
    try:
        backend.connect()
        backend.infer(np.zeros((2, 3, NET_H, NET_W), np.float32))
        name = backend._region.name if backend._region is not None else "(no region)"
        regions = client.get_system_shared_memory_status(as_json=True).get("regions", {})
        assert name in regions, regions
        assert int(regions[name]["byte_size"]) == MAX_BATCH * 3 * NET_H * NET_W * 4
        backend.close()
        assert name not in client.get_system_shared_memory_status(as_json=True).get("regions", {})
    finally:
        client.close()


def test_wrong_input_is_a_backend_error_not_a_retry(triton: TritonServer) -> None:
    backend = TritonBackend(settings(triton))
    try:
        backend.connect()
        with pytest.raises(BackendError, match="expected a batch of shape"):
            backend.infer(np.zeros((1, 3, NET_H, NET_W + 16), np.float32))
    finally:
        backend.close()


def test_versions_need_a_triton_in_explicit_model_control(triton: TritonServer) -> None:
    """This server runs in Triton's default mode (none): it loads no model on request.
    tests/inference/test_triton_versions.py runs versions on one in explicit mode."""
    source = TritonVersions(settings(triton))
    with pytest.raises(VersionError) as caught:
        source.prepare({"1", "2"})
    assert caught.value.code == ReplyCode.FAILED_PRECONDITION
    assert str(caught.value).startswith(
        f"Triton at {triton.grpc_url} does not let clients load models: run it with "
        "--model-control-mode=explicit"
    )


def test_no_server_is_unavailable_after_the_ready_timeout() -> None:
    backend = TritonBackend(
        TritonSettings(url=f"127.0.0.1:{free_port()}", model_name=MODEL, ready_timeout_s=0.3)
    )
    with pytest.raises(BackendUnavailableError, match=r"Triton at 127\.0\.0\.1"):
        backend.connect()
    assert backend.ready() is False


def test_service_resumes_after_triton_restart(
    tmp_path: Path, redis_url: str, detector: ExportedDetector
) -> None:
    """Kill Triton (SIGKILL) mid-stream, restart it: every frame still gets exactly one
    FrameMetadata, and no acknowledged batch lacks metadata at any time."""
    from tests.inference.harness import Harness

    server = start_triton(tmp_path / "triton", detector)
    nvinfer = write_nvinfer(tmp_path, detector.onnx)
    backend = {"kind": "triton", "url": server.grpc_url, "model_name": MODEL,
               "shared_memory": True, "ready_timeout_s": 30}  # fmt: skip
    h = Harness(redis_url, write_pipeline(tmp_path, nvinfer), tmp_path, backend=backend)
    publisher = h.bus.publisher(streams.batches("default"), FrameBatch)
    try:
        h.service.start()
        with h.running():
            for b in range(6):
                publisher.publish(h.batch(b, 2))
            wait_for(lambda: len(h.metadata()) >= 4)
            server.kill()
            for b in range(6, 12):
                publisher.publish(h.batch(b, 2))
            time.sleep(1.0)  # the service keeps failing and holding its batch meanwhile
            assert_acked_have_metadata(h)
            server.start()
            wait_for(lambda: len(h.metadata()) >= 24, timeout=30)
        counts = collections.Counter(
            (m.frame.stream_id, m.frame.frame_number) for m in h.metadata()
        )
        assert counts == {(f"source-{s}", b): 1 for s in range(2) for b in range(12)}
        assert h.pending(streams.batches("default").key) == 0
        assert h.service.unavailable_total._value.get() > 0
    finally:
        h.close()
        server.stop()


def assert_acked_have_metadata(h: Any) -> None:
    """Every batch the group was given and no longer has pending has all its frames' metadata."""
    key = streams.batches("default").key
    (group,) = h.client.xinfo_groups(key)
    last = group["last-delivered-id"]
    pending = {
        e["message_id"] for e in h.client.xpending_range(key, h.settings.group, "-", "+", 1000)
    }
    have = {(m.frame.stream_id, m.frame.frame_number) for m in h.metadata()}
    for entry_id, fields in h.client.xrange(key, "-", last):
        if entry_id in pending:
            continue
        batch = FrameBatch.FromString(fields[b"pb"])
        assert {(f.stream_id, f.frame_number) for f in batch.frames} <= have, entry_id


def wait_for(done: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.05)
