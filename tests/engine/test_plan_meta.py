"""Plan metadata: a plan for another GPU or TensorRT is refused, naming both sides."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from heron.engine.errors import ModelFileError, PlanMismatchError
from heron.engine.gpu import NoGpuError
from heron.engine.plan_meta import (
    InputShapes,
    NodeInfo,
    PlanMetadata,
    load_plan,
    metadata_path,
    write_metadata,
)

PLAN = b"\x00plan-bytes" * 10


def _meta(**changes: object) -> PlanMetadata:
    fields: dict[str, object] = {
        "flavour": "tensorrt",
        "trt_version": "10.3.0",
        "precision": "int8",
        "gpu_name": "NVIDIA A10",
        "compute_capability": "8.6",
        "inputs": [
            InputShapes(name="input_1", min=[1, 3, 8, 8], opt=[4, 3, 8, 8], max=[8, 3, 8, 8])
        ],
        "onnx_sha256": "0" * 64,
        "build_seconds": 1.0,
        "plan_bytes": len(PLAN),
    }
    fields.update(changes)
    return PlanMetadata.model_validate(fields)


def _plan(tmp_path: Path, meta: PlanMetadata) -> Path:
    plan = tmp_path / "model.plan"
    plan.write_bytes(PLAN)
    write_metadata(plan, meta)
    return plan


A10 = NodeInfo(
    flavour="tensorrt", trt_version="10.3.0", gpu_name="NVIDIA A10", compute_capability="8.6"
)


def test_matching_node_loads_the_plan(tmp_path: Path) -> None:
    assert load_plan(_plan(tmp_path, _meta()), A10) == PLAN


@pytest.mark.parametrize(
    ("node", "problem"),
    [
        (
            A10.model_copy(update={"gpu_name": "NVIDIA L4", "compute_capability": "8.9"}),
            r"GPU: plan built for NVIDIA A10 \(compute capability 8.6\), node has NVIDIA L4 "
            r"\(compute capability 8.9\)",
        ),
        (
            A10.model_copy(update={"trt_version": "10.4.0"}),
            "TensorRT version: plan 10.3.0, node 10.4.0",
        ),
        (
            A10.model_copy(update={"flavour": "tensorrt_rtx", "trt_version": "1.7.1"}),
            "TensorRT flavour: plan tensorrt, node tensorrt_rtx",
        ),
    ],
)
def test_mismatched_plan_is_refused_with_a_rebuild_request(
    node: NodeInfo, problem: str, tmp_path: Path
) -> None:
    with pytest.raises(PlanMismatchError, match=problem) as err:
        load_plan(_plan(tmp_path, _meta()), node)
    assert "Rebuild it here: heron build-engine" in str(err.value)
    assert "--precision int8" in str(err.value)


def test_rtx_plan_runs_on_any_of_its_targets_within_a_minor_release(tmp_path: Path) -> None:
    meta = _meta(
        flavour="tensorrt_rtx",
        trt_version="1.7.1.116",
        gpu_name=None,
        compute_capability=None,
        targets=["sm86", "sm120"],
    )
    plan = _plan(tmp_path, meta)
    node = NodeInfo(
        flavour="tensorrt_rtx",
        trt_version="1.7.2.3",
        gpu_name="RTX 5090",
        compute_capability="12.0",
    )
    assert load_plan(plan, node) == PLAN
    with pytest.raises(PlanMismatchError, match=r"sm86, sm120 .*--targets sm89"):
        load_plan(plan, node.model_copy(update={"compute_capability": "8.9"}))


def test_missing_or_corrupt_metadata_and_truncated_plans(tmp_path: Path) -> None:
    plan = tmp_path / "model.plan"
    plan.write_bytes(PLAN)
    with pytest.raises(ModelFileError, match=r"no metadata file model\.plan\.json"):
        load_plan(plan, A10)
    metadata_path(plan).write_text('{"flavour": "tensorrt"')
    with pytest.raises(ModelFileError, match="not valid plan metadata"):
        load_plan(plan, A10)
    write_metadata(plan, _meta(plan_bytes=len(PLAN) + 1))
    with pytest.raises(ModelFileError, match="metadata says 111; rebuild it"):
        load_plan(plan, A10)


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this node has a GPU")
def test_detect_node_without_a_gpu_says_so() -> None:
    from heron.engine.node import detect_node

    pytest.importorskip("tensorrt_rtx", reason="TensorRT-RTX is not installed")
    with pytest.raises(NoGpuError, match="no GPU 0 on this node: nvidia-smi failed"):
        detect_node("tensorrt_rtx")
