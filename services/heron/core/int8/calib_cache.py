"""TensorRT's INT8 calibration cache, the text file DeepStream reads as `int8-calib-file`.

    TRT-100300-EntropyCalibration2
    input_1: 3c010204
    output_cov/Sigmoid: 3c010a14

The header names the TensorRT version (major*10000 + minor*100 + patch for TensorRT 10;
8601 for 8.6.1) and the calibrator; TensorRT uses a cache only when the header's algorithm is
its calibrator's. Each line is a tensor and the float32 bits (big-endian hex) of its scale,
amax / 127.

Here in the core because two services read it: the engine writes caches and builds TensorRT
engines from them, the inference service quantises ONNX models with them on CPU.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

# TensorRT 10.3, the version of DeepStream 7.1 — what a cache is written for unless told.
DEFAULT_TRT_VERSION = 100300
_HEADER = re.compile(r"^TRT-(\d+)-([A-Za-z0-9]+)$")
_HEX = re.compile(r"^[0-9a-fA-F]{8}$")


class CalibCacheError(ValueError):
    """A TensorRT calibration cache does not parse: names the source, the line and why."""

    def __init__(self, source: str, line: int, message: str) -> None:
        super().__init__(f"{source}:{line}: {message}")
        self.source, self.line = source, line


class Algorithm(StrEnum):
    """TensorRT calibrator names, as they appear in a cache header."""

    ENTROPY2 = "EntropyCalibration2"
    ENTROPY = "EntropyCalibration"
    MINMAX = "MinMaxCalibration"
    LEGACY = "LegacyCalibration"  # TensorRT's percentile/quantile calibrator


@dataclass(frozen=True)
class CalibrationCache:
    algorithm: Algorithm
    scales: Mapping[str, float]  # tensor name → scale (amax / 127)
    trt_version: int = DEFAULT_TRT_VERSION
    header: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "header", f"TRT-{self.trt_version}-{self.algorithm.value}")
        for name, scale in self.scales.items():
            if not math.isfinite(scale) or scale < 0:
                raise ValueError(f"tensor {name!r}: scale must be finite and ≥ 0, got {scale}")

    @classmethod
    def from_amax(
        cls,
        algorithm: Algorithm,
        amax: Mapping[str, float],
        trt_version: int = DEFAULT_TRT_VERSION,
    ) -> CalibrationCache:
        return cls(algorithm, {k: v / 127.0 for k, v in amax.items()}, trt_version)

    def amax(self, name: str) -> float:
        return self.scales[name] * 127.0

    def to_text(self) -> str:
        lines = [self.header]
        lines += [f"{name}: {struct.pack('>f', s).hex()}" for name, s in self.scales.items()]
        return "\n".join(lines) + "\n"

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_text())
        return path


def parse(text: str, source: str = "<calibration cache>") -> CalibrationCache:
    """CalibCacheError naming source and line for anything TensorRT would not read."""
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise CalibCacheError(
            source, 1, "empty; expected a header like TRT-100300-EntropyCalibration2"
        )
    header = _HEADER.match(lines[0].strip())
    if header is None:
        raise CalibCacheError(
            source, 1, f"expected a header TRT-<version>-<calibrator>, got {lines[0][:60]!r}"
        )
    try:
        algorithm = Algorithm(header.group(2))
    except ValueError:
        known = ", ".join(a.value for a in Algorithm)
        raise CalibCacheError(
            source, 1, f"unknown calibrator {header.group(2)!r}; expected one of {known}"
        ) from None
    scales: dict[str, float] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        name, sep, value = line.rpartition(":")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            raise CalibCacheError(
                source, number, f"expected 'tensor: <8 hex digits>', got {line!r}"
            )
        if not _HEX.match(value):
            raise CalibCacheError(
                source, number, f"tensor {name!r}: expected 8 hex digits, got {value!r}"
            )
        scale = struct.unpack(">f", bytes.fromhex(value))[0]
        if not math.isfinite(scale) or scale < 0:
            raise CalibCacheError(source, number, f"tensor {name!r}: scale {scale} is not ≥ 0")
        if name in scales:
            raise CalibCacheError(source, number, f"tensor {name!r} appears twice")
        scales[name] = scale
    if not scales:
        raise CalibCacheError(source, len(lines), "no tensor scales after the header")
    return CalibrationCache(algorithm, scales, int(header.group(1)))


def read(path: Path) -> CalibrationCache:
    if not path.is_file():
        raise CalibCacheError(str(path), 0, "no such calibration cache file")
    try:
        text = path.read_text(encoding="ascii")
    except UnicodeDecodeError as e:
        raise CalibCacheError(
            str(path), 1, f"not ASCII text ({e.reason} at byte {e.start})"
        ) from None
    return parse(text, str(path))
