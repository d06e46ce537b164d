"""Shared by the DeepStream config tests: the reference fixtures copied somewhere writable."""

from __future__ import annotations

import shutil
from pathlib import Path

from heron.core.config.diagnostics import Diagnostic, Diagnostics, Severity

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "deepstream"
APP = "facemask_app.txt"
NVINFER = "config_infer_primary_facemask.txt"
LABELS = "labels_facemask.txt"
MODEL_FILES = (
    "models/facemask/resnet18_detector.etlt",
    "models/facemask/calibration.bin",
)


def copy_fixtures(root: Path, *, with_models: bool = False) -> Path:
    """The fixtures at root/configs/facemask (so '../../models' lands in root/models)."""
    folder = root / "configs" / "facemask"
    folder.mkdir(parents=True)
    for name in (APP, NVINFER, LABELS):
        shutil.copy(FIXTURES / name, folder / name)
    if with_models:
        for name in MODEL_FILES:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(b"model bytes")
        # The INT8 config's cache is read when the config is (a TensorRT calibration cache).
        (root / MODEL_FILES[1]).write_text(CALIBRATION_CACHE)
    return folder


CALIBRATION_CACHE = "TRT-100300-EntropyCalibration2\ninput_1: 3c010204\n"


def edit(path: Path, old: bytes, new: bytes) -> None:
    data = path.read_bytes()
    if old not in data:
        raise ValueError(f"{old!r} is not in {path}")
    path.write_bytes(data.replace(old, new, 1))


def line_of(path: Path, text: bytes, after: bytes = b"") -> int:
    """1-based line of the first line containing `text` (after the first `after`)."""
    data = path.read_bytes()
    start = data.index(after) if after else 0
    return data[: data.index(text, start)].count(b"\n") + 1


def matching(diags: Diagnostics, severity: Severity, part: str) -> list[Diagnostic]:
    return [d for d in diags.items if d.severity is severity and part in d.message]
