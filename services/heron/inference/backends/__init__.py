"""Inference backends behind one interface (`Backend`): ONNX Runtime, Triton, PyTorch.

Each backend module imports its heavy library only when built, so importing this package
costs nothing.
"""

from __future__ import annotations

from heron.core.config.nvinfer_models import NvInferConfig
from heron.core.plan.settings.inference import (
    BackendSettings,
    OnnxRuntimeSettings,
    TorchSettings,
    TritonSettings,
)
from heron.inference.backends.base import Backend, ModelInfo
from heron.inference.errors import ModelMismatchError

__all__ = ["Backend", "ModelInfo", "build_backend"]


def build_backend(settings: BackendSettings, nvinfer: NvInferConfig) -> Backend:
    """The configured backend, connected and with its model loaded (Triton: ready)."""
    if isinstance(settings, OnnxRuntimeSettings):
        from heron.inference.backends.onnx_runtime import OnnxRuntimeBackend
        from heron.inference.backends.ort_precision import model_for_mode

        path = settings.model_file or nvinfer.property.onnx_file
        if path is None:
            raise ModelMismatchError(
                "backend onnxruntime needs a model: set backend.model_file or the nvinfer "
                "config's onnx-file"
            )
        if not path.is_file():
            raise ModelMismatchError(f"ONNX model {path} does not exist")
        # network-mode: the INT8 model quantised with int8-calib-file, or the file as it is.
        model, precision = model_for_mode(path, nvinfer.property, settings.int8_cache_dir)
        return OnnxRuntimeBackend(
            model,
            settings.intra_op_threads,
            settings.inter_op_threads,
            spin_wait=settings.spin_wait,
            precision=precision,
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
