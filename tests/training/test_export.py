"""ONNX export: DeepStream's names, dynamic batch, parity with PyTorch on real images."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from heron.training import checkpoint as ckpt
from heron.training.dataset import LabelledImage
from heron.training.export import export_onnx, export_program
from heron.training.model import DetectNetV2
from heron.training.predict import ModelFileError, OnnxRunner, load_runner, predict_paths

from tests.training.conftest import tiny_settings


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    s = tiny_settings(arch="mobilenet_v2")
    torch.manual_seed(0)
    model = DetectNetV2(s.model, len(s.classes))
    path = tmp_path / "model.pt"
    ckpt.save(path, ckpt.Checkpoint(s, model.state_dict(), epoch=1, step=1))
    return path


@pytest.mark.shared_data
def test_export_matches_pytorch_on_real_images(
    checkpoint: Path, real_items: list[LabelledImage], tmp_path: Path
) -> None:
    images = [item.image for item in real_items[:4]]
    report = export_onnx(checkpoint, tmp_path / "model.onnx", images)
    assert report.real_images and report.images == 4
    assert report.max_abs_diff < 1e-4
    graph = onnx.load(str(report.onnx)).graph
    assert [i.name for i in graph.input] == ["input_1"]
    assert [o.name for o in graph.output] == ["output_cov/Sigmoid", "output_bbox/BiasAdd"]
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param  # dynamic batch


def test_onnx_runs_any_batch_and_carries_its_settings(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    export_onnx(checkpoint, out)
    runner = load_runner(out)
    assert isinstance(runner, OnnxRunner) and runner.settings == ckpt.load(checkpoint).settings
    cov, bbox = runner(np.random.default_rng(1).random((3, 3, 64, 128), dtype=np.float32))
    assert cov.shape == (3, 2, 4, 8) and bbox.shape == (3, 8, 4, 8)


@pytest.mark.shared_data
def test_predictions_are_in_image_pixels(checkpoint: Path, real_items: list[LabelledImage]) -> None:
    runner = load_runner(checkpoint, "cpu")
    (pred,) = predict_paths(runner, [real_items[0].image])
    assert pred.size == (256, 144)
    if len(pred.detections):
        assert pred.detections.xyxy[:, 2].max() <= 256 and pred.detections.xyxy[:, 3].max() <= 144


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("none.onnx", None, "no such model file"),
        ("model.h5", b"x", "expected a .pt checkpoint or an .onnx export"),
        ("bad.onnx", b"not onnx", "ONNX Runtime cannot load it"),
    ],
)
def test_bad_model_files(tmp_path: Path, name: str, content: bytes | None, message: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelFileError, match=message):
        load_runner(path)


def test_onnx_without_settings_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plain.onnx"
    torch.onnx.export(torch.nn.Conv2d(3, 1, 1), (torch.rand(1, 3, 8, 8),), str(path), dynamo=False)
    with pytest.raises(ModelFileError, match=r"no 'heron\.settings' metadata"):
        load_runner(path)


def test_pt2_export_runs_any_batch_like_the_checkpoint(checkpoint: Path, tmp_path: Path) -> None:
    """`heron export -o model.pt2`: the PyTorch CUDA backend's file, dynamic batch."""
    report = export_program(checkpoint, tmp_path / "model.pt2")
    assert report.max_abs_diff < 1e-5
    module = torch.export.load(str(report.onnx)).module()
    s = tiny_settings(arch="mobilenet_v2")
    cov, bbox = module(torch.rand(3, 3, s.model.input_height, s.model.input_width))
    assert cov.shape[0] == 3 and bbox.shape[1] == 4 * len(s.classes)


def test_stride_8_model_exports_with_a_twice_finer_grid(tmp_path: Path) -> None:
    s = tiny_settings(arch="mobilenet_v2")
    s = replace(s, model=replace(s.model, output_stride=8))
    model = DetectNetV2(s.model, len(s.classes))
    path = tmp_path / "s8.pt"
    ckpt.save(path, ckpt.Checkpoint(s, model.state_dict(), epoch=1, step=1))
    report = export_onnx(path, tmp_path / "s8.onnx")
    assert report.max_abs_diff < 1e-4
    runner = OnnxRunner(report.onnx)
    assert runner.settings.model.output_stride == 8
    h, w = s.model.input_height, s.model.input_width
    cov, _ = runner(np.zeros((1, 3, h, w), np.float32))
    assert cov.shape[-2:] == (h // 8, w // 8)
