"""What a plan was built for, stored beside it (`model.plan.json`), and the check that refuses a
plan on a node it was not built for — with a rebuild request, never a deserialisation crash.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from heron.engine.errors import ModelFileError, PlanMismatchError

Flavour = Literal["tensorrt", "tensorrt_rtx"]
Precision = Literal["fp32", "fp16", "int8"]


class InputShapes(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    min: list[int]
    opt: list[int]
    max: list[int]


class PlanMetadata(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    flavour: Flavour
    trt_version: str = Field(description="Version of the TensorRT that built the plan.")
    precision: Precision
    gpu_name: str | None = Field(None, description="GPU the plan was built on (tensorrt).")
    compute_capability: str | None = Field(None, description="e.g. '8.6' (tensorrt).")
    targets: list[str] = Field(
        default_factory=list, description="Ahead-of-time targets, e.g. ['sm86'] (tensorrt_rtx)."
    )
    inputs: list[InputShapes]
    onnx_sha256: str
    calibration_sha256: str | None = None
    build_seconds: float
    plan_bytes: int
    built_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    def compute_capabilities(self) -> list[str]:
        """'8.6'-style capabilities the plan runs on."""
        if self.compute_capability is not None:
            return [self.compute_capability]
        return [f"{t[2:-1]}.{t[-1]}" for t in self.targets]


class NodeInfo(BaseModel):
    """The GPU and TensorRT of the node about to load a plan."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    flavour: Flavour
    trt_version: str
    gpu_name: str
    compute_capability: str  # '8.6'


def metadata_path(plan: Path) -> Path:
    return plan.with_name(plan.name + ".json")


def write_metadata(plan: Path, meta: PlanMetadata) -> Path:
    path = metadata_path(plan)
    path.write_text(meta.model_dump_json(indent=2) + "\n")
    return path


def read_metadata(plan: Path) -> PlanMetadata:
    path = metadata_path(plan)
    if not path.is_file():
        raise ModelFileError(f"{plan}: no metadata file {path.name}; rebuild it with build-engine")
    try:
        return PlanMetadata.model_validate(json.loads(path.read_text()))
    except (json.JSONDecodeError, ValidationError) as e:
        raise ModelFileError(f"{path}: not valid plan metadata: {e}") from None


def _major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def check_compatible(plan: Path, meta: PlanMetadata, node: NodeInfo) -> None:
    """PlanMismatchError naming both sides when `node` cannot run the plan."""
    problems = []
    if meta.flavour != node.flavour:
        problems.append(f"TensorRT flavour: plan {meta.flavour}, node {node.flavour}")
    # TensorRT plans are tied to the exact version; TensorRT-RTX keeps compatibility within a
    # minor release.
    same = (
        meta.trt_version == node.trt_version
        if meta.flavour == "tensorrt"
        else _major_minor(meta.trt_version) == _major_minor(node.trt_version)
    )
    if not same:
        problems.append(f"TensorRT version: plan {meta.trt_version}, node {node.trt_version}")
    if node.compute_capability not in meta.compute_capabilities():
        built_for = meta.gpu_name or ", ".join(meta.targets)
        problems.append(
            f"GPU: plan built for {built_for} (compute capability "
            f"{', '.join(meta.compute_capabilities())}), node has {node.gpu_name} "
            f"(compute capability {node.compute_capability})"
        )
    if problems:
        raise PlanMismatchError(
            f"{plan}: cannot run on this node — {'; '.join(problems)}. Rebuild it here: "
            f"heron build-engine --onnx <model.onnx> --precision {meta.precision} "
            f"--builder {node.flavour}"
            + (
                f" --targets sm{node.compute_capability.replace('.', '')}"
                if node.flavour == "tensorrt_rtx"
                else ""
            )
        )


def load_plan(plan: Path, node: NodeInfo) -> bytes:
    """The plan's bytes after the metadata check; PlanMismatchError before any deserialisation."""
    meta = read_metadata(plan)
    check_compatible(plan, meta, node)
    if not plan.is_file():
        raise ModelFileError(f"{plan}: no such plan file")
    data = plan.read_bytes()
    if len(data) != meta.plan_bytes:
        raise ModelFileError(
            f"{plan}: {len(data)} bytes, metadata says {meta.plan_bytes}; rebuild it"
        )
    return data
