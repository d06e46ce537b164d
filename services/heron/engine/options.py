"""What calibration and an engine build are asked for: the options the CLI, the engine Job and
the benchmarks all validate, each default in one place."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from heron.core.int8.calib_cache import DEFAULT_TRT_VERSION, Algorithm
from heron.engine.plan_meta import Flavour, Precision


class BuildOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    onnx: Path = Field(description="FP32 ONNX (fp32/fp16) or the Q/DQ ONNX (int8).")
    precision: Precision = Field("fp32", description="fp32, fp16 or int8.")
    builder: Flavour = Field(
        "tensorrt_rtx",
        description="tensorrt (builds on the GPU it runs on) or tensorrt_rtx (ahead of time, "
        "on the CPU).",
    )
    calib_cache: Path | None = Field(
        None, description="TensorRT calibration cache (int8 without a Q/DQ model)."
    )
    targets: list[str] = Field(
        default_factory=list,
        description="tensorrt_rtx targets, e.g. sm86,sm89 (none given: sm86 and sm89).",
    )
    min_batch: int = Field(1, ge=1, description="Smallest batch of the optimisation profile.")
    opt_batch: int = Field(4, ge=1, description="Batch TensorRT tunes for; a preferred batch.")
    max_batch: int = Field(16, ge=1, description="Largest batch; Triton's max_batch_size.")
    timing_cache: Path | None = Field(None, description="tensorrt: timing cache, read and updated.")

    @model_validator(mode="after")
    def _batches_ordered(self) -> BuildOptions:
        if not self.min_batch <= self.opt_batch <= self.max_batch:
            raise ValueError(
                "expected min_batch ≤ opt_batch ≤ max_batch, got "
                f"{self.min_batch}, {self.opt_batch}, {self.max_batch}"
            )
        return self


class Method(StrEnum):
    AUTO = "auto"  # search the candidates of heron.engine.search on the select images
    ENTROPY = "entropy"
    PERCENTILE = "percentile"
    MINMAX = "minmax"


class CalibrationOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    images: Path = Field(
        description="Folder of calibration images (or a KITTI folder): training images, never "
        "the select or gate images."
    )
    batches: int | None = Field(
        None, ge=1, description="Batches to calibrate on; None: every full batch of the folder."
    )
    batch_size: int = Field(8, ge=1, le=256, description="Images per batch.")
    method: Method = Field(
        Method.AUTO,
        description="How ranges are chosen from activations: `auto` scores the candidate "
        "methods on `select_data` and keeps the best (without it: percentile 99.999).",
    )
    percentile: float = Field(
        99.999, gt=50.0, le=100.0, description="Share of |x| kept by the percentile method."
    )
    select_data: Path | None = Field(
        None,
        description="KITTI folder of held-out images that choose the `auto` method (the "
        "`select` role): never the calibration or gate images.",
    )
    search_budget_s: float = Field(
        900.0,
        gt=0,
        description="Seconds `auto` may spend scoring candidates; it always scores the first, "
        "and starts no other that would end past the budget.",
    )
    keep_fp: Literal["auto", "none"] | tuple[str, ...] = Field(
        "none",
        description="Layers the TensorRT Q/DQ model leaves in float: `auto` (the most "
        "sensitive, measured), `none`, or node names separated by commas.",
    )
    keep_fp_max: int = Field(3, ge=0, description="Most layers `auto` keeps in float.")
    sensitivity_images: int = Field(
        16,
        ge=1,
        description="Images `auto` measures the layers on, spread evenly over all batches: the "
        "first batch alone let one scene choose the layers.",
    )
    trt_version: int = Field(
        DEFAULT_TRT_VERSION, ge=1, description="TensorRT version written in the cache header."
    )
    cache_calibrator: Algorithm | None = Field(
        None,
        description="Calibrator named in the cache header; None: the method's own. TensorRT "
        "reads a cache only into a calibrator of that name, and DeepStream's nvinfer always "
        "uses EntropyCalibration2, so a percentile or minmax cache for nvinfer needs that "
        "header (the scales are the method's either way).",
    )

    @field_validator("keep_fp", mode="before")
    @classmethod
    def _split_names(cls, value: object) -> object:
        """`auto`, `none` or `a,b,c` (the CLI's form) as well as a list of names."""
        if isinstance(value, str) and value not in ("auto", "none"):
            return tuple(n.strip() for n in value.split(",") if n.strip())
        return value


class GateOptions(BaseModel):
    """The INT8 accuracy gate: on whenever there is validation data to score on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_ap_drop: float = Field(
        1.0, ge=0, description="Largest mAP loss (points) INT8 may cost before the build fails."
    )
