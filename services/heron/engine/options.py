"""What one engine build is asked for: the model, precision, flavour, targets and batch profile."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from heron.engine.plan_meta import Flavour, Precision


class BuildOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    onnx: Path = Field(description="FP32 ONNX (fp32/fp16) or the Q/DQ ONNX (int8).")
    precision: Precision = "fp32"
    builder: Flavour = "tensorrt_rtx"
    calib_cache: Path | None = Field(None, description="TensorRT calibration cache (int8).")
    targets: list[str] = Field(
        default_factory=list, description="tensorrt_rtx targets, e.g. sm86 (default sm86, sm89)."
    )
    min_batch: int = Field(1, ge=1)
    opt_batch: int = Field(4, ge=1)
    max_batch: int = Field(16, ge=1)
    timing_cache: Path | None = Field(None, description="tensorrt: timing cache, read and updated.")

    @model_validator(mode="after")
    def _batches_ordered(self) -> BuildOptions:
        if not self.min_batch <= self.opt_batch <= self.max_batch:
            raise ValueError(
                "expected min_batch ≤ opt_batch ≤ max_batch, got "
                f"{self.min_batch}, {self.opt_batch}, {self.max_batch}"
            )
        return self
