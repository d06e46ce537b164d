"""ONNX Runtime's CalibrationDataReader over an image folder, one batch per `get_next()`.

Imports onnxruntime at module load: only calibrate.py imports this module, inside a function.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from heron.engine.images import load_batch


class ImageBatchReader(CalibrationDataReader):  # type: ignore[misc]
    """Batches of `batch_size` images; `set_range` limits it to batches [start, end)."""

    def __init__(
        self, paths: Sequence[Path], input_name: str, width: int, height: int, batch_size: int
    ) -> None:
        self.input_name, self.width, self.height = input_name, width, height
        self.batches = [
            list(paths[i : i + batch_size])
            for i in range(0, len(paths) - batch_size + 1, batch_size)
        ]
        self.start, self.end = 0, len(self.batches)
        self.position = 0

    def __len__(self) -> int:
        return len(self.batches)

    def set_range(self, start_index: int, end_index: int) -> None:
        self.start, self.end = start_index, min(end_index, len(self.batches))
        self.position = self.start

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.position >= self.end:
            return None
        batch = load_batch(self.batches[self.position], self.width, self.height)
        self.position += 1
        return {self.input_name: batch}

    def rewind(self) -> None:
        self.position = self.start
