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
from heron.engine.errors import CalibrationError
from heron.engine.model_info import read_model_info, require_detector
from heron.engine.options import BuildOptions, CalibrationOptions
from heron.engine.search import CPU_LABEL, TENSORRT_LABEL
from heron.evaluation.errors import DataFormatError
from heron.evaluation.roles import ImageFiles, ImageSet, Role, RoleOverlapError


@dataclass(frozen=True)
class CalibrationOutcome:
    calibration: CalibrationResult
    reports: list[VariantReport]  # each INT8 form against FP32 on the gate images
    image_sets: list[ImageSet]  # every set of the run in its role: calibration, select, gate

    def summary(self) -> dict[str, Any]:
        c = self.calibration
        return {
            "cache": str(c.cache),
            "qdq_model": str(c.qdq_model),
            "cpu_model": str(c.cpu_model),
            "images": c.images,
            "batches": c.batches,
            "tensors": c.tensors,
            "method": c.recipe.label,
            "image_sets": [s.fingerprint() for s in self.image_sets],
            "search": c.search.to_dict() if c.search else None,
            "kept_float": list(c.kept_float),
            "sensitivity": c.sensitivity.to_dict() if c.sensitivity else None,
            "seconds": round(c.seconds, 2),
            "histogram_seconds": round(c.histogram_seconds, 2),
            "accuracy": [r.to_dict() for r in self.reports],
        }

    def next_steps(self, max_drop: float) -> str:
        """What to try when a form fails the gate (empty when none does)."""
        failing = [r for r in self.reports if r.drop > max_drop]
        if not failing:
            return ""
        c = self.calibration
        steps = []
        if c.search is None:
            steps.append(
                "--method auto --select-data KITTI_DIR (held-out images, not the gate's: it "
                "scores entropy and percentile 99.99/99.999/99.9999 there and keeps the best)"
            )
        elif c.search.skipped:
            steps.append(f"a larger --search-budget ({len(c.search.skipped)} candidates unscored)")
        if any(r.label == TENSORRT_LABEL for r in failing) and c.sensitivity is None:
            steps.append("--keep-fp auto (the TensorRT form keeps its most sensitive layers float)")
        steps.append("quantisation-aware training, where calibration alone cannot hold the gate")
        return "Try next: " + "; ".join(steps) + "."


def calibration_roles(
    options: CalibrationOptions, eval_data: Path | None
) -> tuple[ImageFiles, ImageFiles | None, ImageFiles | None]:
    """The run's image files in their roles; RoleOverlapError when two roles share an image."""
    from heron.engine.calibrate import calibration_batches
    from heron.evaluation.kitti import KittiDataset
    from heron.evaluation.roles import check_disjoint

    used = tuple(p for batch in calibration_batches(options) for p in batch)
    calibration = ImageFiles(Role.CALIBRATION, f"--images {options.images}", used)

    def kitti(role: Role, folder: Path | None, option: str) -> ImageFiles | None:
        if folder is None:
            return None
        try:
            paths = tuple(s.image for s in KittiDataset(folder))
        except DataFormatError as e:
            raise CalibrationError(f"{option}: {e}") from None
        return ImageFiles(role, f"{option} {folder}", paths)

    select = kitti(Role.SELECT, options.select_data, "--select-data")
    gate = kitti(Role.GATE, eval_data, "--eval-data")
    try:
        check_disjoint(calibration, select, gate)
    except RoleOverlapError as e:
        raise CalibrationError(str(e)) from None
    return calibration, select, gate


def calibrate_and_compare(
    model: Path,
    output: Path,
    options: CalibrationOptions,
    eval_data: Path | None,
    on_batch: Callable[[int, int], None] | None = None,
    *,
    on_stage: Callable[[str], None] = lambda _stage: None,
    on_candidate: Callable[[int, int, str], None] = lambda _done, _total, _text: None,
) -> CalibrationOutcome:
    """Calibrate; with `eval_data` (the gate images), AP of both INT8 variants against FP32.

    Refuses (CalibrationError naming both sets) when the calibration, select and gate images
    are not apart. `on_stage` hears each stage as it starts (scoring takes minutes too: a bar at
    100 % would look stuck), `on_candidate` each method `auto` scores."""
    from heron.engine.accuracy import compare, evaluate_ap

    calibration, select, gate = calibration_roles(options, eval_data)
    require_detector(read_model_info(model))
    result = calibrate(
        model, output, options, on_batch, on_stage=on_stage, on_candidate=on_candidate
    )
    reports: list[VariantReport] = []
    if eval_data is not None:
        on_stage(f"scoring FP32 on the gate images {eval_data}")
        fp32 = evaluate_ap(model, eval_data)
        for path, label in ((result.qdq_model, TENSORRT_LABEL), (result.cpu_model, CPU_LABEL)):
            on_stage(f"scoring {label}")
            reports.append(compare(fp32, path, eval_data, label))
    sets = [s.image_set() for s in (calibration, select, gate) if s is not None]
    return CalibrationOutcome(result, reports, sets)


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

    require_detector(read_model_info(options.onnx))
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
    require_detector(info)
    base = triton_repo.base_config(name, info, max_batch)
    version = version or triton_repo.next_version(repository / name)
    triton_repo.publish_onnx(repository, name, onnx, base=base, version=version, python=False)
    return repository / name / str(version) / "model.onnx"
