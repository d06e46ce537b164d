"""Inference backends behind one interface (`Backend`): ONNX Runtime, Triton, PyTorch.

Each backend module imports its heavy library only when built, so importing this package
costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from heron.core.config.nvinfer_models import NvInferConfig
from heron.core.plan.settings.inference import (
    BackendSettings,
    OnnxRuntimeSettings,
    TorchSettings,
    TritonSettings,
)
from heron.inference.backends.base import Backend, ModelInfo
from heron.inference.errors import ModelMismatchError

__all__ = ["Backend", "ModelInfo", "RepositoryPlace", "build_backend", "onnx_model_file"]

MODEL_FILE = "model.onnx"  # a version's file in a Triton-layout repository


def build_backend(settings: BackendSettings, nvinfer: NvInferConfig) -> Backend:
    """The configured backend, connected and with its model loaded (Triton: ready)."""
    if isinstance(settings, OnnxRuntimeSettings):
        from heron.inference.backends.onnx_runtime import OnnxRuntimeBackend
        from heron.inference.backends.ort_precision import model_for_mode

        path = onnx_model_file(settings, nvinfer)
        # network-mode: the INT8 model quantised with int8-calib-file, or the file as it is.
        model, precision = model_for_mode(path, nvinfer.property, settings.int8_cache_dir)
        # A file in a model repository is named as the repository names it (model, version).
        place = RepositoryPlace.of(settings, path)
        return OnnxRuntimeBackend(
            model,
            settings.intra_op_threads,
            settings.inter_op_threads,
            spin_wait=settings.spin_wait,
            precision=precision,
            name=None if place is None or place.version is None else place.model,
            version=None if place is None else place.version,
        )
    if isinstance(settings, TritonSettings):
        from heron.inference.backends.triton_grpc import TritonBackend

        backend = TritonBackend(settings)
        backend.connect()
        return backend
    if isinstance(settings, TorchSettings):
        from heron.inference.backends.torch_cuda import TorchBackend, torch_model_info

        prop = nvinfer.property
        dims = prop.infer_dims or prop.input_dims or prop.uff_input_dims
        if not dims or not prop.output_blob_names:
            raise ModelMismatchError(
                "backend torch needs infer-dims (c;h;w) and output-blob-names in the nvinfer "
                "config: a torch file does not name its tensors"
            )
        info = torch_model_info(
            settings.model_file,
            (int(dims[0]), int(dims[1]), int(dims[2])),
            tuple(prop.output_blob_names),
        )
        return TorchBackend.from_file(settings, info)
    raise TypeError(f"unknown backend settings {type(settings).__name__}")  # pragma: no cover


def onnx_model_file(settings: OnnxRuntimeSettings, nvinfer: NvInferConfig) -> Path:
    """The ONNX file the config names (backend.model_file, else the nvinfer onnx-file)."""
    path = settings.model_file or nvinfer.property.onnx_file
    if path is None:
        raise ModelMismatchError(
            "backend onnxruntime needs a model: set backend.model_file or the nvinfer "
            "config's onnx-file"
        )
    if not path.is_file():
        raise ModelMismatchError(f"ONNX model {path} does not exist")
    return path


@dataclass(frozen=True)
class RepositoryPlace:
    """Where the model's versions live: `<repository>/<model>/<version>/model.onnx`, and
    the version the config's own file is (None: the file lies outside the repository)."""

    repository: Path
    model: str
    version: str | None

    def version_file(self, version: str) -> Path:
        return self.repository / self.model / version / MODEL_FILE

    @classmethod
    def of(cls, settings: OnnxRuntimeSettings, config_file: Path) -> RepositoryPlace | None:
        """The settings' repository, else the one `config_file` sits in (Triton's layout
        with a numbered version folder); None when there is neither."""
        folder = config_file.parent
        if settings.model_repository is not None and settings.repository_model is not None:
            model_dir = settings.model_repository / settings.repository_model
            inside = folder.parent.resolve() == model_dir.resolve()
            version = folder.name if inside else None
            return cls(settings.model_repository, settings.repository_model, version)
        if config_file.name == MODEL_FILE and folder.name.isdigit():
            return cls(folder.parent.parent, folder.parent.name, folder.name)
        return None
