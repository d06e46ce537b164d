"""TensorRT calibration cache: round trip, known encodings, and every malformed input."""

from __future__ import annotations

from pathlib import Path

import pytest
from heron.core.int8 import calib_cache
from heron.core.int8.calib_cache import Algorithm, CalibCacheError, CalibrationCache


@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_round_trip(algorithm: Algorithm, tmp_path: Path) -> None:
    cache = CalibrationCache.from_amax(
        algorithm, {"input_1": 1.0, "conv1/Relu:0": 6.5, "output_cov/Sigmoid": 0.0}, 8601
    )
    back = calib_cache.read(cache.write(tmp_path / "calibration.bin"))
    assert back.header == f"TRT-8601-{algorithm.value}"
    assert back.algorithm is algorithm
    assert back.scales.keys() == cache.scales.keys()
    for name in cache.scales:  # float32 bits: exact to float32 precision
        assert back.amax(name) == pytest.approx(cache.amax(name), rel=1e-6)


@pytest.mark.parametrize(
    ("amax", "hex_"),
    [(1.0, "3c010204"), (127.0, "3f800000"), (0.0, "00000000")],
)
def test_scale_is_big_endian_float32_of_amax_over_127(amax: float, hex_: str) -> None:
    text = CalibrationCache.from_amax(Algorithm.ENTROPY2, {"x": amax}, 100300).to_text()
    assert text == f"TRT-100300-EntropyCalibration2\nx: {hex_}\n"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("", 1, "empty"),
        ("TensorRT cache\nx: 3c010204\n", 1, "expected a header"),
        ("TRT-8601-Magic\nx: 3c010204\n", 1, "unknown calibrator 'Magic'"),
        ("TRT-8601-EntropyCalibration2\n", 1, "no tensor scales"),
        ("TRT-8601-EntropyCalibration2\nx 3c010204\n", 2, "expected 'tensor: <8 hex digits>'"),
        ("TRT-8601-EntropyCalibration2\nx: 3c0102\n", 2, "expected 8 hex digits, got '3c0102'"),
        ("TRT-8601-EntropyCalibration2\nx: zzzzzzzz\n", 2, "expected 8 hex digits"),
        ("TRT-8601-EntropyCalibration2\nx: bf800000\n", 2, "is not ≥ 0"),
        ("TRT-8601-EntropyCalibration2\nx: 7fc00000\n", 2, "is not ≥ 0"),  # NaN
        ("TRT-8601-EntropyCalibration2\nx: 3c010204\ny: 1\nx: 3c010204\n", 3, "8 hex digits"),
        ("TRT-8601-EntropyCalibration2\nx: 3c010204\nx: 3c010204\n", 3, "'x' appears twice"),
        ("TRT-8601-EntropyCalibration2\n: 3c010204\n", 2, "expected 'tensor"),
    ],
)
def test_malformed_caches_name_line_and_problem(text: str, line: int, message: str) -> None:
    with pytest.raises(CalibCacheError, match=message) as err:
        calib_cache.parse(text, "calib.bin")
    assert err.value.line == line
    assert str(err.value).startswith(f"calib.bin:{line}: ")


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(CalibCacheError, match="no such calibration cache"):
        calib_cache.read(tmp_path / "missing.bin")
    binary = tmp_path / "engine.plan"
    binary.write_bytes(b"\xff\xfe\x00plan")
    with pytest.raises(CalibCacheError, match="not ASCII text"):
        calib_cache.read(binary)


def test_tensor_names_may_contain_colons() -> None:
    cache = calib_cache.parse("TRT-8601-MinMaxCalibration\nblock:1/conv:0: 3c010204\n")
    assert list(cache.scales) == ["block:1/conv:0"]
