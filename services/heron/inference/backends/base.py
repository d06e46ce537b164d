"""The one interface every inference backend implements, and what it says about its model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float32]


@dataclass(frozen=True)
class ModelInfo:
    """What the service needs to know about a loaded model."""

    name: str
    version: str
    input_name: str
    input_shape: tuple[int, int, int]  # C, H, W (NCHW models only)
    output_names: tuple[str, ...]
    max_batch_size: int  # most images one `infer` call takes; 0 = no limit
    metadata: dict[str, str] = field(default_factory=dict)  # e.g. ONNX metadata_props


class Backend(Protocol):
    """Runs a model: `infer` takes an NCHW float32 batch and returns every output by name.

    `infer` raises BackendUnavailableError when the backend cannot serve now (retry later) and
    BackendError when the request itself is wrong. `reset()` drops connections and cached state
    (the next call reconnects); `close()` releases everything.
    """

    def model_info(self) -> ModelInfo: ...

    def infer(self, batch: FloatArray) -> dict[str, FloatArray]: ...

    def ready(self) -> bool: ...

    def reset(self) -> None: ...

    def close(self) -> None: ...


def check_batch(batch: FloatArray, info: ModelInfo) -> FloatArray:
    """`batch` as C-contiguous float32 of shape (N, C, H, W) matching the model, or BackendError."""
    from heron.inference.errors import BackendError

    if batch.ndim != 4 or tuple(batch.shape[1:]) != info.input_shape or batch.shape[0] < 1:
        raise BackendError(
            f"model {info.name!r} input {info.input_name!r}: expected a batch of shape "
            f"(N>=1, {', '.join(map(str, info.input_shape))}), got {tuple(batch.shape)}"
        )
    if batch.dtype != np.float32:
        raise BackendError(f"model {info.name!r}: expected float32 input, got {batch.dtype}")
    return np.ascontiguousarray(batch)


def split_batches(batch: FloatArray, limit: int) -> list[FloatArray]:
    """`batch` in chunks of at most `limit` images (all of it when `limit` is 0)."""
    if limit <= 0 or len(batch) <= limit:
        return [batch]
    return [batch[i : i + limit] for i in range(0, len(batch), limit)]


def concat_outputs(parts: list[dict[str, FloatArray]]) -> dict[str, FloatArray]:
    if len(parts) == 1:
        return parts[0]
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
