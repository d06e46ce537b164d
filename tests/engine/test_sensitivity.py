"""Per-layer sensitivity (no real data needed: the tiny detector on random pixels)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest
from heron.core.int8.qdq import QdqVariant, quantize, save_ranges
from heron.engine.calibrate import collect_histograms
from heron.engine.model_info import read_model_info
from heron.engine.options import CalibrationOptions
from heron.engine.sensitivity import (
    LayerSensitivity,
    SensitivityReport,
    analyse,
    compute_layers,
    output_error,
    run_model,
)

from tests.engine.conftest import HEIGHT, WIDTH


def test_output_error_is_relative_per_output() -> None:
    a, b = np.ones((2, 3)), np.full((4,), 100.0)
    assert output_error([a, b], [a, b]) == 0.0
    assert output_error([a, b], [1.1 * a, b]) == pytest.approx(0.1)
    assert output_error([a, b], [1.1 * a, 1.1 * b]) == pytest.approx(0.2)


def test_choose_takes_the_most_sensitive_above_the_threshold() -> None:
    layers = tuple(
        LayerSensitivity(name, "Conv", error, recovered)
        for name, error, recovered in [("a", 0.1, 0.5), ("b", 0.15, 0.25), ("c", 0.19, 0.01)]
    )
    report = SensitivityReport(0.2, layers)
    assert report.choose(3, 0.05) == ("a", "b")
    assert report.choose(1, 0.05) == ("a",)
    assert report.to_dict()["layers"][0] == {
        "node": "a",
        "op": "Conv",
        "error": 0.1,
        "recovered": 0.5,
    }


@pytest.mark.parametrize(
    ("given", "expected"),
    [("auto", "auto"), ("none", "none"), ("/a/Conv, /b/Conv", ("/a/Conv", "/b/Conv"))],
)
def test_keep_fp_option_forms(given: str, expected: object, tmp_path: Path) -> None:
    assert CalibrationOptions(images=tmp_path, keep_fp=given).keep_fp == expected


def test_analyse_ranks_every_conv_of_the_detector(detector_onnx: Path, tmp_path: Path) -> None:
    images = np.random.default_rng(0).random((4, 3, HEIGHT, WIDTH), dtype=np.float32)
    info = read_model_info(detector_onnx)
    folder = tmp_path / "images"
    folder.mkdir()
    for i, image in enumerate(images):
        cv2.imwrite(str(folder / f"{i}.png"), (image.transpose(1, 2, 0) * 255).astype(np.uint8))
    # Ranges from the model's own activations on these pixels, as calibrate makes them.
    hist = collect_histograms(detector_onnx, info, [sorted(folder.iterdir())])
    ranges = save_ranges(hist.ranges(hist.amax("minmax")), tmp_path / "ranges.json")

    def quantise(path: Path, keep: Sequence[str]) -> Path:
        return quantize(
            detector_onnx, ranges, path, variant=QdqVariant.TENSORRT, note="t", keep_float=keep
        )

    report = analyse(detector_onnx, {"input_1": images}, quantise)
    layers = compute_layers(detector_onnx)
    assert len(report.layers) == len(layers) == 6
    assert all(s.error <= report.baseline * 1.5 for s in report.layers)
    # Every layer float: the boxes are FP32's; only the sigmoid's own Q/DQ is left on coverage.
    everything = quantise(tmp_path / "float.onnx", [n for n, _ in layers])
    cov, bbox = run_model(detector_onnx, {"input_1": images})
    cov_q, bbox_q = run_model(everything, {"input_1": images})
    np.testing.assert_allclose(bbox_q, bbox, rtol=1e-5, atol=1e-4)
    assert float(np.abs(cov_q - cov).max()) <= 1 / 127
