"""What the service takes from the pipeline config: the primary GIE, resolved, and what its
input may hold (the sources' streams, the muxer's batch)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from heron.core.bus.admission import BatchShape, KnownStreams
from heron.core.config.diagnostics import Diagnostic
from heron.core.config.gie import effective_nvinfer, engine_not_run
from heron.core.config.models import Pipeline
from heron.core.config.nvinfer_models import NetworkType, NvInferConfig
from heron.core.plan.settings.inference import BackendSettings, OnnxRuntimeSettings
from heron.inference.errors import ModelMismatchError


@dataclass(frozen=True)
class PrimaryDetector:
    """The primary GIE as it runs: `nvinfer` is its config with the [primary-gie] keys on top
    (`effective_nvinfer`), so batch-size, interval, gie-unique-id and labels are the group's
    where it sets them."""

    nvinfer: NvInferConfig
    config_file: Path | None
    # The load's finding that the model is a TensorRT engine Heron cannot run, if any: it
    # says where the engine was set, for the error when no other model is at hand.
    engine_not_run: Diagnostic | None = None

    @property
    def batch_size(self) -> int:
        return self.nvinfer.property.batch_size

    @property
    def interval(self) -> int:
        return self.nvinfer.property.interval

    @property
    def unique_id(self) -> int:
        return self.nvinfer.property.gie_unique_id


@dataclass(frozen=True)
class InputLimits:
    """What a frame or muxer batch must fit to be served; the rest is dead-lettered."""

    streams: KnownStreams  # the sources' stream ids (input: batches)
    batch: BatchShape  # the muxer's output size and most frames per batch


def input_limits(
    pipeline: Pipeline, added: Callable[[], Iterable[str]] | None = None
) -> InputLimits:
    """`added` tells the streams added at run time (heron.core.commands.added_streams)."""
    return InputLimits(KnownStreams.of(pipeline, added), BatchShape.of(pipeline))


def primary_detector(
    pipeline: Pipeline, source: Path, findings: Iterable[Diagnostic] = ()
) -> PrimaryDetector:
    """The enabled [primary-gie] as it runs; `findings` are the load's (see `engine_not_run`)."""
    gie = pipeline.primary_gie
    if gie is None or not gie.enable:
        raise ModelMismatchError(f"{source}: [primary-gie] is missing or not enabled (enable=1)")
    if gie.nvinfer is None:
        raise ModelMismatchError(f"{source}: [primary-gie] has no config-file")
    config = effective_nvinfer(gie)
    if config.property.network_type is not NetworkType.DETECTOR:
        raise ModelMismatchError(
            f"{gie.config_file}: network-type is {config.property.network_type.value}; the "
            "inference service serves detectors (network-type=0)"
        )
    return PrimaryDetector(config, gie.config_file, engine_not_run(findings))


def require_model(backend: BackendSettings, detector: PrimaryDetector) -> None:
    """ONNX Runtime runs the onnx-file unless the settings name a model. With a TensorRT
    engine instead there is nothing it can run: say where the engine was set and what to do
    (with no engine either, `build_backend` says what is missing)."""
    if not isinstance(backend, OnnxRuntimeSettings) or backend.model_file is not None:
        return
    found = detector.engine_not_run
    if detector.nvinfer.property.onnx_file is not None or found is None:
        return
    where = f"{found.file}:{found.line}" if found.line else str(found.file)
    raise ModelMismatchError(
        f"backend onnxruntime has no model to run: {where}: [{found.field}] {found.message}"
    )
