"""Fixtures of the inference tests: a small exported detector and the configs that serve it."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.inference.detector import BBOX_NAME, COV_NAME, build_detector, export_detector

# The network input of the test detector: a 7x4 grid at stride 16.
NET_H, NET_W = 64, 112
CLASSES = ("Mask", "No-Mask")
STREAMS = 5  # sources of the test pipeline: stream ids source-0 .. source-4


@dataclass(frozen=True)
class ExportedDetector:
    module: Any  # the torch module the ONNX came from
    onnx: Path


@pytest.fixture(scope="session")
def detector(tmp_path_factory: pytest.TempPathFactory) -> ExportedDetector:
    model = build_detector(len(CLASSES))
    path = tmp_path_factory.mktemp("model") / "tiny_detectnet.onnx"
    return ExportedDetector(model, export_detector(model, path, NET_H, NET_W))


def write_nvinfer(
    folder: Path, onnx: Path, extra: str = "", class_attrs: str = "", name: str = "nvinfer.txt"
) -> Path:
    """An nvinfer config for the test detector; `extra` adds or overrides [property] keys."""
    (folder / "labels.txt").write_text("\n".join(CLASSES) + "\n")
    keys = {
        "net-scale-factor": "0.0039215697906911373",
        "offsets": "0;0;0",
        "onnx-file": str(onnx),
        "labelfile-path": "labels.txt",
        "infer-dims": f"3;{NET_H};{NET_W}",
        "batch-size": "4",
        "network-mode": "0",
        "num-detected-classes": str(len(CLASSES)),
        "interval": "0",
        "gie-unique-id": "1",
        "output-blob-names": f"{COV_NAME};{BBOX_NAME}",
        "model-color-format": "0",
        "cluster-mode": "2",
    }
    for line in extra.strip().splitlines():
        key, value = line.split("=", 1)
        keys[key.strip()] = value.strip()
    body = "\n".join(f"{k}={v}" for k, v in keys.items())
    attrs = class_attrs or "[class-attrs-all]\npre-cluster-threshold=0.5\nnms-iou-threshold=0.5\n"
    path = folder / name
    path.write_text(f"[property]\n{body}\n\n{attrs}")
    return path


def write_pipeline(
    folder: Path, nvinfer: Path, *, padding: bool = False, sources: int = STREAMS
) -> Path:
    """A pipeline YAML with `sources` cameras (streams source-0, source-1, ...; the muxer's
    batch holds one frame of each), a fake sink and the detector as primary GIE."""
    cameras = "".join(
        f"  {i}: {{type: camera_v4l2, enable: true, camera_v4l2_dev_node: {i}, "
        "camera_width: 224, camera_height: 128, camera_fps_n: 30}\n"
        for i in range(sources)
    )
    path = folder / "pipeline.yaml"
    path.write_text(
        "sources:\n"
        f"{cameras}"
        "sinks:\n"
        "  0: {type: fake, enable: true}\n"
        f"streammux: {{width: {NET_W}, height: {NET_H}, enable_padding: {str(padding).lower()}}}\n"
        "primary_gie:\n"
        "  enable: true\n"
        f"  config_file: {nvinfer}\n"
    )
    return path


def constant_detector(path: Path, coverage: tuple[float, ...]) -> Path:
    """The test detector answering coverage `coverage[k]` for class k in every cell, whatever
    the frame, with a 14x14 box around each cell's centre (no two overlap)."""
    import torch

    model = build_detector(len(coverage))
    with torch.no_grad():
        model.cov.weight.zero_()
        model.bbox.weight.zero_()
        model.cov.bias.copy_(torch.tensor([math.log(c / (1 - c)) for c in coverage]))
        model.bbox.bias.fill_(0.2)
    return export_detector(model, path, NET_H, NET_W)


@pytest.fixture(scope="session")
def version_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """ONNX files by version: 1 finds class 0, 2 finds class 1, 3 has three classes."""
    folder = tmp_path_factory.mktemp("versions")
    return {
        "1": constant_detector(folder / "v1.onnx", (0.7, 0.35)),
        "2": constant_detector(folder / "v2.onnx", (0.35, 0.7)),
        "3": constant_detector(folder / "v3.onnx", (0.7, 0.35, 0.35)),
    }


@pytest.fixture
def pipeline_file(tmp_path: Path, detector: ExportedDetector) -> Path:
    return write_pipeline(tmp_path, write_nvinfer(tmp_path, detector.onnx))


@pytest.fixture
def torch_threads() -> Iterator[None]:
    """Keep torch to one thread in tests that run it beside ONNX Runtime on 2 cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
