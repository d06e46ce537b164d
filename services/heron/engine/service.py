"""The engine service as a Kubernetes Job: one build request per run.

`python -m heron.engine --config engine.yaml` (or HERON_CONFIG_FILE / HERON_* variables, as every
Heron service) runs calibrate → accuracy gate → build → publish and prints a JSON result.
Exit status: 0 published, 1 refused (gate, bad model, build error), 2 bad settings.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from heron.core.options import field_default
from heron.core.runtime.settings import HelpShown, ServiceSettings, SettingsError, load_settings
from heron.engine.errors import EngineError
from heron.engine.options import BuildOptions, CalibrationOptions, GateOptions
from heron.engine.plan_meta import Flavour, Precision

log = logging.getLogger("heron.engine")


class BatchSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # The build's own defaults (engine.options), so the Job and the CLI build the same profile.
    min: int = Field(field_default(BuildOptions, "min_batch"), ge=1, description="Smallest batch.")
    opt: int = Field(field_default(BuildOptions, "opt_batch"), ge=1, description="Tuned batch.")
    max: int = Field(
        field_default(BuildOptions, "max_batch"), ge=1, description="Triton's max_batch_size."
    )


class EngineSettings(ServiceSettings):
    """One build request."""

    service_name: str = "heron-engine"
    onnx: Path = Field(description="FP32 ONNX from `heron export`.")
    repository: Path = Field(description="Triton model repository to publish into.")
    model_name: str = Field("detector", min_length=1, description="Model name in the repository.")
    precision: Precision = "int8"
    builder: Flavour = "tensorrt_rtx"
    targets: list[str] = Field(default_factory=list, description="tensorrt_rtx SM targets.")
    batch: BatchSettings = Field(default_factory=BatchSettings)
    calibration: CalibrationOptions | None = Field(
        None, description="Required for int8: images, batches, batch size, method."
    )
    eval_data: Path | None = Field(None, description="KITTI validation folder for the gate.")
    max_ap_drop: float = Field(
        field_default(GateOptions, "max_ap_drop"),
        ge=0,
        description="Largest INT8 mAP loss (points) allowed; `heron calibrate`'s default too.",
    )
    work_dir: Path = Field(Path("engine-work"), description="Calibration outputs go here.")
    cpu_models: bool = Field(
        True, description="Also publish <name>_onnx (onnxruntime) and <name>_python models."
    )
    version: int | None = Field(None, ge=1, description="Model version; default: the next one.")


@dataclass
class JobResult:
    steps: list[str] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)


def run_job(settings: EngineSettings) -> JobResult:
    """calibrate (int8) → gate (with eval_data) → build → publish; EngineError to refuse."""
    from rich.console import Console

    from heron.core.progress import Reporter
    from heron.engine.accuracy import check_gate
    from heron.engine.pipeline import build_and_publish, calibrate_and_compare

    result = JobResult()
    onnx, cpu_onnx, calib = settings.onnx, settings.onnx, None
    if settings.precision == "int8":
        if settings.calibration is None:
            raise EngineError("precision int8 needs `calibration` (images, batches, method)")
        # Progress to stderr (stdout's last line is the Job's JSON result): lines in a pod's log.
        with Reporter(Console(stderr=True, highlight=False), unit="batches") as progress:
            progress.stage("calibrating")
            outcome = calibrate_and_compare(
                settings.onnx, settings.work_dir, settings.calibration, settings.eval_data,
                progress.update, on_stage=progress.stage,
                on_candidate=lambda done, total, text: progress.update(
                    done, total, text=text, force=True
                ),
            )  # fmt: skip
        result.steps.append("calibrate")
        result.outputs["calibration"] = outcome.summary()
        if outcome.reports:
            limit = settings.max_ap_drop
            check_gate(outcome.reports, limit, outcome.next_steps(limit))
            result.steps.append("gate")
        onnx, cpu_onnx = outcome.calibration.qdq_model, outcome.calibration.cpu_model
        calib = outcome.calibration.cache
    options = BuildOptions(
        onnx=onnx,
        precision=settings.precision,
        builder=settings.builder,
        calib_cache=calib,
        targets=settings.targets,
        min_batch=settings.batch.min,
        opt_batch=settings.batch.opt,
        max_batch=settings.batch.max,
    )
    published = build_and_publish(
        options,
        settings.repository,
        settings.model_name,
        settings.version,
        cpu_onnx=cpu_onnx if settings.cpu_models else None,
    )
    result.steps += ["build", "publish"]
    result.outputs["published"] = {k: str(v) for k, v in published.items()}
    return result


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(EngineSettings, sys.argv[1:] if argv is None else argv)
    except HelpShown:
        return 0
    except SettingsError as e:
        print(e, file=sys.stderr)
        return 2
    try:
        result = run_job(settings)
    except EngineError as e:
        log.error("%s", e)
        print(json.dumps({"ok": False, "error": str(e)}))
        return 1
    print(json.dumps({"ok": True, "steps": result.steps, **result.outputs}, default=str))
    return 0
