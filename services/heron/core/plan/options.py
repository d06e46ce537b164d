"""What shapes a plan beyond the pipeline config: the detector backend, the pipeline's name,
buffer sizes. `heron.run.options.RunOptions` adds what only a local run needs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from heron.core import streams
from heron.core.grpc.settings import split_listen


class PlanOptions(BaseModel):
    """What a plan decides beyond the pipeline config (`heron run`'s and `heron config plan`'s
    options take their defaults and help from here, heron.core.options)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pipeline: str = Field(
        streams.DEFAULT_PIPELINE, description="Pipeline name in the bus's stream names."
    )
    streammux: bool | None = Field(
        None, description="Force the muxer on or off; None = lossless for files, muxer else."
    )
    backend: Literal["onnxruntime", "triton"] = Field("onnxruntime", description="Detector.")
    intra_op_threads: int = Field(0, ge=0, description="ONNX Runtime threads; 0 = its default.")
    encoder_preset: str = Field(
        "ultrafast",
        min_length=1,
        description="x264/x265 preset of the file sink. deepstream-app encodes on the GPU "
        "(NVENC) for free; here the encoder shares the CPU with inference, and ultrafast costs "
        "about 1 ms a frame at 538x372 against 4 ms for veryfast (larger files at a bitrate).",
    )
    triton_url: str | None = Field(
        None, description="Triton gRPC host:port; unset: the inference service's default."
    )
    triton_model: str | None = Field(None, description="Triton model name.")
    shm_slots: int = Field(96, ge=2, description="Ingest ring slots per stream.")
    max_lag: int = Field(8, ge=1, description="Lossless: frames inference may have in hand.")
    ring_batches: int = Field(32, ge=1, description="Live: muxer ring size in batches.")
    log_level: str = Field("INFO", description="Services' log level.")
    grpc_listen: str = Field(
        "127.0.0.1:50051",
        description="HOST:PORT the control service's gRPC API (Pipeline, Detections) listens on; "
        "port 0: a free one, printed at start.",
    )

    detector_listen: str | None = Field(
        "127.0.0.1:50052",
        description="HOST:PORT the inference service's Detector gRPC API listens on; port 0: "
        "a free one, printed at start; None: no Detector API.",
    )

    @field_validator("grpc_listen", "detector_listen")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is not None:
            split_listen(value)
        return value
