"""Fixtures of the engine tests: a small detector ONNX, real calibration images, a calibration
of the detector on them, and (when the wheel is here) the TensorRT-RTX module."""

from __future__ import annotations

import warnings
from pathlib import Path
from types import ModuleType

import pytest
from heron.engine.calibrate import CalibrationResult, calibrate
from heron.engine.options import CalibrationOptions, Method

from tests.inference.detector import build_detector, export_detector

HEIGHT, WIDTH = 128, 224  # small input: a 8×14 grid, fast to calibrate and build
CALIB_IMAGES = 16


@pytest.fixture(scope="session")
def detector_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("detector") / "detector.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch's legacy-exporter notice
        return export_detector(build_detector(), path, HEIGHT, WIDTH)


@pytest.fixture(scope="session")
def calib_images(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of links to the first real face images (the data itself is never copied)."""
    folder = tmp_path_factory.mktemp("calib-images")
    source = sorted((shared_data / "facemask-kaggle" / "images").glob("*.jpg"))
    for image in source[:CALIB_IMAGES]:
        (folder / image.name).symlink_to(image)
    return folder


@pytest.fixture(scope="session")
def check_images(shared_data: Path) -> list[Path]:
    """Real images not used for calibration, to compare INT8 with FP32 on."""
    return sorted((shared_data / "facemask-kaggle" / "images").glob("*.jpg"))[100:108]


@pytest.fixture(scope="session")
def calibrated(
    detector_onnx: Path, calib_images: Path, tmp_path_factory: pytest.TempPathFactory
) -> CalibrationResult:
    options = CalibrationOptions(
        images=calib_images, batches=4, batch_size=4, method=Method.ENTROPY, keep_fp="auto"
    )
    return calibrate(detector_onnx, tmp_path_factory.mktemp("calibrated"), options)


@pytest.fixture(scope="session")
def trt_rtx() -> ModuleType:
    module: ModuleType = pytest.importorskip(
        "tensorrt_rtx", reason="TensorRT-RTX is not installed: pip install tensorrt-rtx-cu12"
    )
    return module
