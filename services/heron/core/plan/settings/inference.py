"""Settings of the inference service (`python -m heron.inference -c settings.yaml`).

The model, its preprocessing and postprocessing come from the pipeline config's primary GIE
(its nvinfer config); these settings choose the backend and how the service reads and writes
the bus. Environment variables: `HERON_PIPELINE_CONFIG`, `HERON_BACKEND__KIND=triton`, ...
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from heron.core.bus.admission import AdmissionSettings
from heron.core.grpc.settings import GrpcServerSettings
from heron.core.runtime import BusConsumerSettings


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# A model's name is a folder of a Triton-layout repository (`<repo>/<model>/<version>/`):
# letters, digits, '_', '.', '-', not starting with '.', so it never names a path elsewhere.
_FOLDER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def _folder_name(value: str) -> str:
    if not _FOLDER_NAME.fullmatch(value):
        raise ValueError(
            "expected a model's folder name in the repository: 1-128 letters, digits, '_', '.', "
            f"'-', not starting with '.' (no '/', no '..'), got {value!r}"
        )
    return value


FolderName = Annotated[str, AfterValidator(_folder_name)]


class OnnxRuntimeSettings(_Strict):
    """ONNX Runtime in this process: the default on CPU."""

    kind: Literal["onnxruntime"] = "onnxruntime"
    model_file: Path | None = Field(
        None, description="ONNX model; default: the nvinfer config's onnx-file."
    )
    intra_op_threads: int = Field(0, ge=0, description="Threads inside one op; 0 = ORT's default.")
    inter_op_threads: int = Field(1, ge=0, description="Ops run in parallel; 0 = ORT's default.")
    spin_wait: bool = Field(
        False,
        description="Let idle ORT threads spin for the next op (ORT's default). Off: they sleep, "
        "leaving the cores to decode, tracking and encoding running beside them (a CPU pipeline "
        "shares few cores); on: slightly lower latency on a machine of its own.",
    )
    int8_cache_dir: Path | None = Field(
        None,
        description="network-mode=1: where the model quantised with int8-calib-file is kept; "
        "default: next to the ONNX file, else ~/.cache/heron/int8.",
    )
    model_repository: Path | None = Field(
        None,
        description="Triton-layout repository of the model's versions, "
        "<model_repository>/<repository_model>/<version>/model.onnx, for SetModelVersions; "
        "default: the repository the ONNX file sits in when its path has that layout.",
    )
    repository_model: FolderName | None = Field(
        None,
        description="The model's folder in model_repository (set both or neither): letters, "
        "digits, '_', '.', '-'.",
    )

    @model_validator(mode="after")
    def _repository_needs_model(self) -> OnnxRuntimeSettings:
        if (self.model_repository is None) != (self.repository_model is None):
            raise ValueError(
                "model_repository and repository_model go together: the versions are "
                f"<model_repository>/<repository_model>/<version>/model.onnx (got "
                f"model_repository={self.model_repository}, "
                f"repository_model={self.repository_model!r})"
            )
        return self


class TritonSettings(_Strict):
    """A Triton Inference Server over gRPC."""

    kind: Literal["triton"] = "triton"
    url: str = Field("127.0.0.1:8001", description="host:port of Triton's gRPC endpoint.")
    model_name: FolderName = Field(
        description="Model name in Triton's repository (a folder name: letters, digits, '_', "
        "'.', '-').",
    )
    model_version: str = Field(
        "",
        description="The config's version; empty = the newest one Triton serves when the "
        "service starts (kept until it restarts; SetModelVersions routes streams to others).",
    )
    shared_memory: bool = Field(
        False, description="Send inputs through system shared memory (same host as Triton)."
    )
    ready_timeout_s: float = Field(
        60.0, gt=0, description="Longest wait for server and model readiness at start."
    )
    request_timeout_s: float = Field(30.0, gt=0, description="Timeout of one inference call.")


class TorchSettings(_Strict):
    """PyTorch on a GPU without TensorRT: fp16, torch.compile, CUDA graphs."""

    kind: Literal["torch"] = "torch"
    model_file: Path = Field(description="TorchScript (.pt/.ts) or torch.export (.pt2) file.")
    device: str = Field("cuda", description="torch device; 'cpu' runs fp32 without CUDA graphs.")
    fp16: bool = Field(True, description="Run in half precision (CUDA only).")
    compile: bool = Field(True, description="torch.compile the model.")
    cuda_graphs: bool = Field(
        True, description="Capture CUDA graphs (compile mode reduce-overhead)."
    )


BackendSettings = Annotated[
    OnnxRuntimeSettings | TritonSettings | TorchSettings, Field(discriminator="kind")
]


class InferenceSettings(BusConsumerSettings):
    service_name: str = "inference"
    group: str = "inference"
    pipeline_config: Path = Field(
        description="deepstream-app config (.txt) or pipeline YAML; its primary GIE is served."
    )
    input: Literal["batches", "frames"] = Field(
        "batches",
        description="Read FrameBatch from the muxer, or FrameRef straight from frame streams.",
    )
    frame_streams: list[str] = Field(
        default_factory=list, description="With input=frames: the stream ids to read."
    )
    backend: BackendSettings = Field(default_factory=OnnxRuntimeSettings)
    bbox_scale: float | None = Field(
        None, gt=0, description="DetectNet_v2 bbox scale; default: the ONNX metadata, else 35."
    )
    bbox_offset: float | None = Field(
        None, description="DetectNet_v2 bbox offset; default: the ONNX metadata, else 0.5."
    )
    retry_initial_s: float = Field(0.2, gt=0, description="First wait after a backend failure.")
    retry_max_s: float = Field(5.0, gt=0, description="Longest wait between backend retries.")
    admission: AdmissionSettings = Field(
        default_factory=AdmissionSettings,
        description="When a frame number is from the future (dead-lettered) or its stream moved "
        "(followed after admission.resync_after agreeing frames).",
    )
    grpc: GrpcServerSettings | None = Field(
        None,
        description="The Detector gRPC service (Detect, DetectStream, GetModel) on this address; "
        "None (the default): no gRPC server, the service only reads and writes the bus. "
        "`heron run` sets it.",
    )
    detect_max_images: int = Field(
        64, ge=1, le=4096, description="Most images one Detect request may carry."
    )
    detect_max_image_pixels: int = Field(
        4096 * 4096,
        ge=1,
        description="Most pixels (width x height) one Detect image may have, read from its "
        "header before it is decoded.",
    )

    @model_validator(mode="after")
    def _frames_need_streams(self) -> InferenceSettings:
        if self.input == "frames" and not self.frame_streams:
            raise ValueError("input=frames needs frame_streams (the stream ids to read), got []")
        if self.retry_max_s < self.retry_initial_s:
            raise ValueError(
                f"retry_max_s ({self.retry_max_s}) must be >= retry_initial_s "
                f"({self.retry_initial_s})"
            )
        return self
