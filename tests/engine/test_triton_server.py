"""The real tritonserver (nvidia-pytriton wheel, python backend only) loads the python-backend
model heron.engine publishes and answers gRPC inference with ONNX Runtime's outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from heron.engine.model_info import read_model_info
from heron.engine.options import BuildOptions
from heron.engine.pipeline import build_and_publish

from tests.engine.conftest import HEIGHT, WIDTH
from tests.support.triton_server import TritonServer, TritonUnavailableError


def test_tritonserver_serves_the_published_python_model(
    detector_onnx: Path, tmp_path: Path
) -> None:
    import onnxruntime as ort
    import tritonclient.grpc as grpcclient  # type: ignore[import-untyped,unused-ignore]

    pytest.importorskip("tensorrt_rtx", reason="TensorRT-RTX is not installed")
    repo = tmp_path / "repo"
    published = build_and_publish(
        BuildOptions(onnx=detector_onnx, max_batch=4), repo, "det", cpu_onnx=detector_onnx
    )
    # This Triton has only the python backend: serve a repository of just that model.
    served = tmp_path / "served"
    served.mkdir()
    python_model = published["python"].parent
    (served / "det_python").symlink_to(python_model)
    try:
        server = TritonServer(served, tmp_path)
    except TritonUnavailableError as e:
        pytest.skip(str(e))
    server.start()
    try:
        client = grpcclient.InferenceServerClient(server.grpc_url)
        assert client.is_model_ready("det_python")
        images = np.random.default_rng(1).random((3, 3, HEIGHT, WIDTH), dtype=np.float32)
        request = grpcclient.InferInput("input_1", list(images.shape), "FP32")
        request.set_data_from_numpy(images)
        outputs = [o.name for o in read_model_info(detector_onnx).outputs]
        result = client.infer(
            "det_python", [request], outputs=[grpcclient.InferRequestedOutput(o) for o in outputs]
        )
        session = ort.InferenceSession(str(detector_onnx), providers=["CPUExecutionProvider"])
        expected = session.run(outputs, {"input_1": images})
        for name, want in zip(outputs, expected, strict=True):
            got = result.as_numpy(name)
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        client.close()
    finally:
        server.stop()
