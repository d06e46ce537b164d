"""The INT8 scales are pinned: the same seeded activations and the same small model on the
same images give the amax values the calibration code gave before its speed-up (issue 18,
item 4), to 1e-6 relative. A change that moves one bin moves a scale by ~5e-4: far past it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from heron.core.int8 import calib_cache
from heron.engine.calibrate import calibrate
from heron.engine.histograms import HistogramCollector
from heron.engine.options import CalibrationOptions

from tests.engine.pinned import (
    BATCH_SIZE,
    BATCHES,
    METHODS,
    PINNED_FILE,
    activation_batches,
    method_key,
    pinned_images,
    pinned_model,
)

TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def pinned() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(PINNED_FILE.read_text())
    return data


def _assert_same(expected: dict[str, float], got: dict[str, float], what: str) -> None:
    assert set(got) == set(expected), what
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=TOLERANCE), f"{what}: {name}"


@pytest.mark.parametrize(("method", "percentile"), METHODS)
def test_histogram_scales_are_pinned(
    method: str, percentile: float, pinned: dict[str, Any]
) -> None:
    collector = HistogramCollector()
    for batch in activation_batches():
        collector.add(batch)
    key = method_key(method, percentile)
    _assert_same(pinned["activations"][key], collector.amax(method, percentile), key)


@pytest.fixture(scope="module")
def model_and_images(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("pinned")
    return pinned_model(folder / "pinned.onnx"), pinned_images(folder / "images")


@pytest.mark.parametrize(("method", "percentile"), METHODS)
def test_calibration_cache_scales_are_pinned(
    method: str,
    percentile: float,
    pinned: dict[str, Any],
    model_and_images: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    model, images = model_and_images
    options = CalibrationOptions(
        images=images,
        batches=BATCHES,
        batch_size=BATCH_SIZE,
        method=method,
        percentile=percentile or 99.999,
        keep_fp="none",
    )
    cache = calib_cache.read(calibrate(model, tmp_path, options).cache)
    key = method_key(method, percentile)
    _assert_same(pinned["model"][key], {n: cache.amax(n) for n in cache.scales}, key)
