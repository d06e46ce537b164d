"""What the service takes from the pipeline config: the primary GIE, resolved, and what its
input may hold (the sources' streams, the muxer's batch)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from heron.core.bus.admission import BatchShape, KnownStreams
from heron.core.config.models import Pipeline
from heron.core.config.nvinfer_models import NetworkType, NvInferConfig
from heron.inference.errors import ModelMismatchError


@dataclass(frozen=True)
class PrimaryDetector:
    """The primary GIE with the [primary-gie] overrides of its nvinfer keys applied."""

    nvinfer: NvInferConfig
    config_file: Path | None
    batch_size: int
    interval: int
    unique_id: int


@dataclass(frozen=True)
class InputLimits:
    """What a frame or muxer batch must fit to be served; the rest is dead-lettered."""

    streams: KnownStreams  # the sources' stream ids (input: batches)
    batch: BatchShape  # the muxer's output size and most frames per batch


def input_limits(pipeline: Pipeline) -> InputLimits:
    return InputLimits(KnownStreams.of(pipeline), BatchShape.of(pipeline))


def read_pipeline(path: Path) -> Pipeline:
    """A deepstream-app key file or a pipeline YAML (by suffix); ConfigError lists problems."""
    from heron.core.config.deepstream import read_deepstream_app
    from heron.core.config.yaml_loader import read_pipeline_yaml

    if path.suffix.lower() in (".yaml", ".yml"):
        return read_pipeline_yaml(path)[0]
    return read_deepstream_app(path)[0]


def primary_detector(pipeline: Pipeline, source: Path) -> PrimaryDetector:
    gie = pipeline.primary_gie
    if gie is None or not gie.enable:
        raise ModelMismatchError(f"{source}: [primary-gie] is missing or not enabled (enable=1)")
    config = gie.nvinfer
    if config is None:
        raise ModelMismatchError(f"{source}: [primary-gie] has no config-file")
    if config.property.network_type is not NetworkType.DETECTOR:
        raise ModelMismatchError(
            f"{gie.config_file}: network-type is {config.property.network_type.value}; the "
            "inference service serves detectors (network-type=0)"
        )
    prop = config.property
    return PrimaryDetector(
        nvinfer=config,
        config_file=gie.config_file,
        batch_size=gie.batch_size or prop.batch_size,
        interval=gie.interval if gie.interval is not None else prop.interval,
        unique_id=gie.unique_id,
    )
