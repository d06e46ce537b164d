"""ONNX Runtime and PyTorch backends against torch itself; the interface's input checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from heron.core.plan.settings.inference import TorchSettings
from heron.inference.backends.base import ModelInfo
from heron.inference.backends.onnx_runtime import OnnxRuntimeBackend
from heron.inference.backends.torch_cuda import TorchBackend
from heron.inference.errors import BackendError, ModelMismatchError

from tests.inference.conftest import NET_H, NET_W, ExportedDetector
from tests.inference.detector import BBOX_NAME, COV_NAME, build_detector, export_detector


def torch_outputs(detector: ExportedDetector, batch: np.ndarray) -> dict[str, np.ndarray]:
    import torch

    with torch.no_grad():
        cov, bbox = detector.module(torch.from_numpy(batch))
    return {COV_NAME: cov.numpy(), BBOX_NAME: bbox.numpy()}


@pytest.mark.parametrize("n", [1, 3])
def test_onnxruntime_equals_torch(detector: ExportedDetector, n: int, torch_threads: None) -> None:
    backend = OnnxRuntimeBackend(detector.onnx, intra_op_threads=1)
    batch = np.random.default_rng(n).random((n, 3, NET_H, NET_W), dtype=np.float32)
    got = backend.infer(batch)
    want = torch_outputs(detector, batch)
    assert set(got) == {COV_NAME, BBOX_NAME}
    for name in want:
        assert got[name].shape == want[name].shape
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-5)


def test_model_info_describes_the_model(detector: ExportedDetector) -> None:
    info = OnnxRuntimeBackend(detector.onnx).model_info()
    assert info.input_name == "input_1"
    assert info.input_shape == (3, NET_H, NET_W)
    assert info.output_names == (COV_NAME, BBOX_NAME)
    assert info.max_batch_size == 0  # dynamic batch
    assert info.name == "tiny_detectnet" and len(info.version) == 12  # file digest


def test_fixed_batch_model_is_padded_and_split(tmp_path: Path, torch_threads: None) -> None:
    import torch

    model = build_detector()
    path = tmp_path / "fixed.onnx"
    torch.onnx.export(
        model,
        (torch.zeros(2, 3, NET_H, NET_W),),
        str(path),
        input_names=["input_1"],
        output_names=[COV_NAME, BBOX_NAME],
        opset_version=17,
        dynamo=False,
    )
    backend = OnnxRuntimeBackend(path)
    assert backend.model_info().max_batch_size == 2
    batch = np.random.default_rng(0).random((3, 3, NET_H, NET_W), dtype=np.float32)
    got = backend.infer(batch)  # 2 + (1 padded to 2)
    want = torch_outputs(ExportedDetector(model, path), batch)
    np.testing.assert_allclose(got[COV_NAME], want[COV_NAME], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        (np.zeros((1, 3, NET_H, NET_W + 1), np.float32), r"expected a batch of shape \(N>=1, 3,"),
        (np.zeros((3, NET_H, NET_W), np.float32), "expected a batch of shape"),
        (np.zeros((0, 3, NET_H, NET_W), np.float32), "expected a batch of shape"),
        (np.zeros((1, 3, NET_H, NET_W), np.float64), "expected float32 input, got float64"),
    ],
)
def test_wrong_batches_are_refused(
    detector: ExportedDetector, batch: np.ndarray, message: str
) -> None:
    with pytest.raises(BackendError, match=message):
        OnnxRuntimeBackend(detector.onnx).infer(batch)


def test_missing_or_broken_model_file(tmp_path: Path) -> None:
    with pytest.raises(ModelMismatchError, match="does not exist"):
        OnnxRuntimeBackend(tmp_path / "absent.onnx")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(ModelMismatchError, match=r"broken\.onnx: cannot load"):
        OnnxRuntimeBackend(broken)


def test_torch_backend_on_cpu_equals_onnxruntime(
    detector: ExportedDetector, tmp_path: Path, torch_threads: None
) -> None:
    """The PyTorch backend's CPU path (fp32, no compile) on a torch.export file; the CUDA path
    (fp16, compile, CUDA graphs) needs a GPU and is not run here."""
    import torch

    path = tmp_path / "model.pt2"
    batch_dim = torch.export.Dim("batch", min=1, max=16)
    program = torch.export.export(
        detector.module,
        (torch.zeros(2, 3, NET_H, NET_W),),
        dynamic_shapes={"x": {0: batch_dim}},
    )
    torch.export.save(program, str(path))
    info = ModelInfo("tiny", "1", "input", (3, NET_H, NET_W), (COV_NAME, BBOX_NAME), 0)
    settings = TorchSettings(model_file=path, device="cpu", fp16=False, compile=False)
    backend = TorchBackend.from_file(settings, info)
    for n in (1, 3):
        batch = np.random.default_rng(n).random((n, 3, NET_H, NET_W), dtype=np.float32)
        got, want = backend.infer(batch), OnnxRuntimeBackend(detector.onnx).infer(batch)
        for name in want:
            np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-5)


def test_torch_backend_refuses_cuda_without_gpu(detector: ExportedDetector) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    info = ModelInfo("tiny", "1", "input", (3, NET_H, NET_W), (COV_NAME, BBOX_NAME), 0)
    with pytest.raises(ModelMismatchError, match="CUDA is not available"):
        TorchBackend(detector.module, info, device="cuda")


def test_export_helper_round_trips(tmp_path: Path) -> None:
    path = export_detector(build_detector(num_classes=3), tmp_path / "m.onnx", 32, 48)
    info = OnnxRuntimeBackend(path).model_info()
    assert info.input_shape == (3, 32, 48)
    out = OnnxRuntimeBackend(path).infer(np.zeros((1, 3, 32, 48), np.float32))
    assert out[COV_NAME].shape == (1, 3, 2, 3) and out[BBOX_NAME].shape == (1, 12, 2, 3)
