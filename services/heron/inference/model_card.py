"""What `GetModel` answers: the model the service loaded, as the service already knows it."""

from __future__ import annotations

from heron.core.config.nvinfer_models import NvInferConfig
from heron.core.plan.settings.inference import BackendSettings, TorchSettings
from heron.inference.backends.base import Backend
from heron.inference.backends.base import ModelInfo as BackendModelInfo
from heron.inference.backends.onnx_runtime import OnnxRuntimeBackend
from heron.inference.preprocess import PreprocessSpec
from heron.v1.detector_pb2 import ModelInfo


def model_card(
    info: BackendModelInfo,
    spec: PreprocessSpec,
    config: NvInferConfig,
    *,
    settings: BackendSettings,
    backend: Backend,
    batch_size: int,
) -> ModelInfo:
    """`batch_size`: the images one backend call takes (the pipeline's batch-size, capped by
    the model's own maximum); a larger Detect request is split into calls of that many."""
    most = batch_size if info.max_batch_size <= 0 else min(batch_size, info.max_batch_size)
    return ModelInfo(
        name=info.name,
        version=info.version,
        precision=precision(settings, backend, config),
        backend=settings.kind,
        input_width=spec.width,
        input_height=spec.height,
        input_channels=spec.channels,
        max_batch_size=max(most, 1),
        labels=config.labels,
    )


def precision(settings: BackendSettings, backend: Backend, config: NvInferConfig) -> str:
    """fp32, fp16 or int8: what runs, where the service can tell.

    ONNX Runtime: what `network-mode` became on this CPU (FP16 runs FP32; INT8 without a
    calibration file too). torch: fp16 on CUDA when asked. Triton: the config's `network-mode`,
    the precision the engine was built for (Triton's metadata does not say)."""
    if isinstance(backend, OnnxRuntimeBackend):
        return backend.precision.split(" ", 1)[0]  # e.g. "fp32 (fp16 asked)"
    if isinstance(settings, TorchSettings):
        return "fp16" if settings.fp16 and settings.device.startswith("cuda") else "fp32"
    return config.property.network_mode.value
