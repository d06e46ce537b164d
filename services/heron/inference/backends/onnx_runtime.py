"""ONNX Runtime in-process: the default backend on CPU."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from heron.inference.backends.base import (
    FloatArray,
    ModelInfo,
    check_batch,
    concat_outputs,
    split_batches,
)
from heron.inference.errors import BackendError, ModelMismatchError

# ONNX Runtime reports an unset model_version as the largest int64.
UNSET_VERSION = 2**63 - 1


class OnnxRuntimeBackend:
    """One `InferenceSession` on the CPU execution provider; thread counts are configurable."""

    def __init__(
        self,
        model_file: Path,
        intra_op_threads: int = 0,
        inter_op_threads: int = 1,
        *,
        spin_wait: bool = True,
        precision: str = "fp32",
        name: str | None = None,
        version: str | None = None,
    ):
        """`name`/`version` replace what the file says (a model repository's folder names)."""
        import onnxruntime as ort

        if not model_file.is_file():
            raise ModelMismatchError(f"ONNX model {model_file} does not exist")
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = inter_op_threads
        if not spin_wait:
            # Idle pool threads sleep instead of spinning: on a few shared cores the spinning
            # steals the CPU that decoding and encoding in the other processes need.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        try:
            self._session: Any = ort.InferenceSession(
                str(model_file), options, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # ORT raises its own untyped errors for unreadable models
            raise ModelMismatchError(f"ONNX model {model_file}: cannot load: {e}") from e
        self._path = model_file
        self.precision = precision  # what network-mode became on this CPU (for logs)
        info = self._read_info()
        self._info = replace(info, name=name or info.name, version=version or info.version)

    def _read_info(self) -> ModelInfo:
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            names = [i.name for i in inputs]
            raise ModelMismatchError(f"{self._path}: expected one input, got {names}")
        shape = inputs[0].shape
        dims = shape[1:] if len(shape) == 4 else []
        if len(dims) != 4 - 1 or not all(isinstance(d, int) for d in dims):
            raise ModelMismatchError(
                f"{self._path}: input {inputs[0].name!r} must be NCHW with fixed C, H, W, "
                f"got shape {shape}"
            )
        meta = self._session.get_modelmeta()
        batch = shape[0]
        return ModelInfo(
            name=meta.graph_name if meta.graph_name not in ("", "main_graph") else self._path.stem,
            version=str(meta.version) if 0 < meta.version < UNSET_VERSION else _digest(self._path),
            input_name=inputs[0].name,
            input_shape=(int(dims[0]), int(dims[1]), int(dims[2])),
            output_names=tuple(o.name for o in self._session.get_outputs()),
            # A fixed batch dimension is the most (and the only size) the session takes.
            max_batch_size=batch if isinstance(batch, int) else 0,
            metadata=dict(meta.custom_metadata_map),
        )

    def model_info(self) -> ModelInfo:
        return self._info

    def infer(self, batch: FloatArray) -> dict[str, FloatArray]:
        batch = check_batch(batch, self._info)
        fixed = self._info.max_batch_size
        parts = []
        for chunk in split_batches(batch, fixed):
            n = len(chunk)
            feed = chunk
            if fixed and n < fixed:  # a fixed-batch model: pad, then drop the padding's outputs
                pad = np.zeros((fixed - n, *chunk.shape[1:]), np.float32)
                feed = np.concatenate([chunk, pad])
            try:
                outputs = self._session.run(None, {self._info.input_name: feed})
            except Exception as e:  # ORT's errors are untyped; a failed run is not transient
                raise BackendError(f"ONNX Runtime failed on {self._path.name}: {e}") from e
            parts.append(
                {
                    name: np.asarray(value, np.float32)[:n]
                    for name, value in zip(self._info.output_names, outputs, strict=True)
                }
            )
        return concat_outputs(parts)

    def ready(self) -> bool:
        return True

    def reset(self) -> None:
        """Nothing to reconnect: the session lives in this process."""

    def close(self) -> None:
        self._session = None


def _digest(path: Path) -> str:
    """A version for unversioned files: the first 12 hex digits of the file's SHA-256."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()[:12]
