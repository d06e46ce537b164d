"""The steps the CLI and the Job share: calibrate + compare, build + publish."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heron.engine.accuracy import VariantReport
from heron.engine.build import build_plan
from heron.engine.builders import get_builder
from heron.engine.calibrate import CalibrationResult, calibrate
from heron.engine.model_info import read_model_info
from heron.engine.options import BuildOptions, CalibrationOptions


@dataclass(frozen=True)
class CalibrationOutcome:
    calibration: CalibrationResult
    reports: list[VariantReport]

    def summary(self) -> dict[str, Any]:
        c = self.calibration
        return {
            "cache": str(c.cache),
            "qdq_model": str(c.qdq_model),
            "cpu_model": str(c.cpu_model),
            "images": c.images,
            "batches": c.batches,
            "tensors": c.tensors,
            "method": c.method.value,
            "kept_float": list(c.kept_float),
            "sensitivity": c.sensitivity.to_dict() if c.sensitivity else None,
            "seconds": round(c.seconds, 2),
            "accuracy": [r.to_dict() for r in self.reports],
        }


def calibrate_and_compare(
    model: Path,
    output: Path,
    options: CalibrationOptions,
    eval_data: Path | None,
    on_batch: Callable[[int, int], None] | None = None,
    *,
    on_stage: Callable[[str], None] = lambda _stage: None,
) -> CalibrationOutcome:
    """Calibrate; with `eval_data`, AP of both INT8 variants against FP32. `on_stage` hears
    each stage as it starts (scoring takes minutes too: a bar at 100 % would look stuck)."""
    from heron.engine.accuracy import compare, evaluate_ap

    result = calibrate(model, output, options, on_batch)
    reports: list[VariantReport] = []
    if eval_data is not None:
        on_stage(f"scoring FP32 on {eval_data}")
        fp32 = evaluate_ap(model, eval_data)
        for path, label in (
            (result.qdq_model, "TensorRT Q/DQ (S8S8)"),
            (result.cpu_model, "ONNX Runtime CPU (U8S8)"),
        ):
            on_stage(f"scoring {label}")
            reports.append(compare(fp32, path, eval_data, label))
    return CalibrationOutcome(result, reports)


def build_and_publish(
    options: BuildOptions,
    repository: Path,
    name: str,
    version: int | None = None,
    cpu_onnx: Path | None = None,
) -> dict[str, Path]:
    """Build the plan into `repository/name`; with `cpu_onnx`, also `<name>_onnx` (onnxruntime
    backend) and `<name>_python` (python backend) models of that ONNX."""
    from heron.engine import triton_repo

    built = build_plan(options, get_builder(options.builder))
    preferred = sorted({options.opt_batch, options.max_batch})
    base = triton_repo.base_config(
        name, built.info, options.max_batch, preferred_batch_sizes=preferred
    )
    version = version or triton_repo.next_version(repository / name)
    plan = triton_repo.publish_plan(
        repository, name, built.plan, built.metadata, base=base, version=version
    )
    out = {"plan": plan}
    if cpu_onnx is not None:
        info = read_model_info(cpu_onnx)
        for suffix, python in (("_onnx", False), ("_python", True)):
            cpu_name = name + suffix
            cpu_base = triton_repo.base_config(
                cpu_name, info, options.max_batch, preferred_batch_sizes=preferred
            )
            out[suffix[1:]] = triton_repo.publish_onnx(
                repository,
                cpu_name,
                cpu_onnx,
                base=cpu_base,
                version=triton_repo.next_version(repository / cpu_name),
                python=python,
            )
    return out


def publish_for_onnx_runtime(
    onnx: Path, repository: Path, name: str, version: int | None, max_batch: int
) -> Path:
    """`onnx` as version `version` (default: the next) of the model `name`: model.onnx with an
    `onnxruntime_onnx` config.pbtxt, which Triton serves on CPU nodes and Heron's ONNX Runtime
    inference loads by version (docs/inference.md, "Model versions at run time")."""
    from heron.engine import triton_repo

    info = read_model_info(onnx)
    base = triton_repo.base_config(name, info, max_batch)
    version = version or triton_repo.next_version(repository / name)
    triton_repo.publish_onnx(repository, name, onnx, base=base, version=version, python=False)
    return repository / name / str(version) / "model.onnx"
