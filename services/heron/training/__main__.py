"""`python -m heron.training`: the Kubernetes training job: train → (prune → retrain) → evaluate
→ export ONNX → (calibrate INT8 and score it).

Settings come from arguments or the environment (HERON_TRAIN_SPEC, HERON_TRAIN_RESULTS,
HERON_TRAIN_DEVICE, HERON_TRAIN_COMPILE, HERON_TRAIN_EPOCHS); under torchrun every rank runs
this, rank 0 writes. All artifacts land in the results folder (a PersistentVolumeClaim in the
cluster). Each step prints `heron-step: <Step>` as it starts (the operator's status.step).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from heron.training.job import CalibrationStep, PruneStep

# The line the operator's job_report and TrainingRun controller look for
# (heron_operator.job_report.STEP_PREFIX; tests/training/test_job_steps.py keeps them equal).
STEP_PREFIX = "heron-step: "
_PRUNE_FLAGS = {"pth": "--pth", "normalizer": "--normalizer", "equalization": "--equalization",
                "granularity": "--granularity", "min_filters": "--min-filters",
                "retrain_spec": "--retrain-spec"}  # fmt: skip
_CALIBRATION_FLAGS = {"calibration_images": "images", "calibration_batches": "batches",
                      "calibration_batch_size": "batch_size", "calibration_method": "method",
                      "calibration_percentile": "percentile"}  # fmt: skip


class JobSettings(BaseSettings):
    """The training job's settings; arguments override the environment."""

    model_config = SettingsConfigDict(env_prefix="HERON_TRAIN_", extra="forbid")

    spec: Path = Field(description="TAO DetectNet_v2 experiment spec (text or YAML).")
    results: Path = Field(description="Results folder: checkpoints, metrics, model files.")
    device: str | None = Field(None, description="cpu, cuda or cuda:N; default: auto.")
    compile: bool = Field(False, description="torch.compile the network (GPU).")
    progress: bool = Field(False, description="Progress bar (off: logs suit a pod better).")
    cudnn_benchmark: bool = Field(True, description="cuDNN autotuning (slower first epoch).")
    epochs: int | None = Field(None, ge=0, description="Instead of the spec's num_epochs.")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m heron.training", description=__doc__)
    p.add_argument("-e", "--experiment_spec_file", dest="spec", type=Path)
    p.add_argument("-r", "--results_dir", dest="results", type=Path)
    p.add_argument("-k", "--key", help="TAO model key: accepted, never used or printed")
    p.add_argument("--device")
    p.add_argument("--compile", action="store_true", default=None)
    p.add_argument("--progress", action="store_true", default=None)
    p.add_argument(
        "--no-cudnn-benchmark", dest="cudnn_benchmark", action="store_false", default=None
    )
    p.add_argument("--epochs", type=int, help="instead of num_epochs (the retrain's too)")
    prune = p.add_argument_group("prune and retrain (heron prune's options, docs/pruning.md)")
    prune.add_argument("--prune", action="store_true", help="prune the trained model, retrain it")
    prune.add_argument("--pth", type=float, help="threshold on the normalised filter norm")
    prune.add_argument("--normalizer", help="max or L2")
    prune.add_argument("--equalization", help="union, intersection, arithmetic_mean, ...")
    prune.add_argument("--granularity", type=int, help="kept counts round up to this")
    prune.add_argument("--min-filters", dest="min_filters", type=int, help="filters kept at least")
    prune.add_argument("--retrain-spec", dest="retrain_spec", type=Path,
                       help="the retrain's spec; default: the training spec")  # fmt: skip
    calib = p.add_argument_group("INT8 calibration (heron calibrate's options, docs/engine.md)")
    calib.add_argument("--calibrate", action="store_true", help="calibrate INT8 and score it")
    calib.add_argument("--calibration-images", type=Path, help="default: the training images")
    calib.add_argument("--calibration-batches", type=int)
    calib.add_argument("--calibration-batch-size", type=int)
    calib.add_argument("--calibration-method", help="entropy, percentile or minmax")
    calib.add_argument("--calibration-percentile", type=float, help="with method percentile")
    return p


def parse_args(argv: list[str]) -> JobSettings:
    args = _job_arguments(vars(parser().parse_args(argv)))
    return JobSettings(**{k: v for k, v in args.items() if v is not None})


def _job_arguments(args: dict[str, Any]) -> dict[str, Any]:
    """The JobSettings part of the arguments (the step options are `steps()`'s)."""
    drop = {"key", "prune", "calibrate", *_PRUNE_FLAGS, *_CALIBRATION_FLAGS}
    return {k: v for k, v in args.items() if k not in drop}


def steps(argv: list[str]) -> tuple[PruneStep | None, CalibrationStep | None]:
    """The optional steps the arguments ask for; ValueError naming a misused option."""
    from heron.training.job import CalibrationStep, PruneStep

    args = vars(parser().parse_args(argv))
    prune_given = [flag for name, flag in _PRUNE_FLAGS.items() if args[name] is not None]
    calib_given = [name for name in _CALIBRATION_FLAGS if args[name] is not None]
    if prune_given and not args["prune"]:
        raise ValueError(f"{', '.join(prune_given)}: prune options need --prune")
    if calib_given and not args["calibrate"]:
        flags = ", ".join("--" + name.replace("_", "-") for name in calib_given)
        raise ValueError(f"{flags}: calibration options need --calibrate")
    prune = None
    if args["prune"]:
        from heron.training.prune.pruner import PruneOptions

        given = {n: args[n] for n in ("normalizer", "equalization", "granularity", "min_filters")}
        given["threshold"] = args["pth"]
        options = PruneOptions(**{k: v for k, v in given.items() if v is not None})
        prune = PruneStep(options, args["retrain_spec"])
    calibration = None
    if args["calibrate"]:
        calibration = CalibrationStep(**{f: args[n] for n, f in _CALIBRATION_FLAGS.items()})
    return prune, calibration


def mark_step(step: str) -> None:
    print(f"{STEP_PREFIX}{step}", flush=True)


def main(argv: list[str] | None = None) -> int:
    from pydantic import ValidationError

    from heron.training.job import JobRequest, TrainingError, configure_logging, run_job
    from heron.training.options import TrainOptions

    argv = sys.argv[1:] if argv is None else argv
    try:
        settings = parse_args(argv)
    except ValidationError as e:
        wrong = ", ".join(f"{err['loc'][0]} ({err['msg']})" for err in e.errors())
        print(
            f"error: missing or invalid settings: {wrong} (pass -e/-r or set "
            "HERON_TRAIN_SPEC / HERON_TRAIN_RESULTS)",
            file=sys.stderr,
        )
        return 2
    configure_logging(rich_logs=False)
    options = TrainOptions(
        device=settings.device,
        compile=settings.compile,
        progress=settings.progress,
        cudnn_benchmark=settings.cudnn_benchmark,
    )
    try:
        prune, calibration = steps(argv)
        request = JobRequest(
            settings.spec, settings.results, options, epochs=settings.epochs,
            prune=prune, calibration=calibration,
        )  # fmt: skip
    except ValueError as e:  # PruneError, and the request's own checks
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        result = run_job(request, on_step=mark_step)
    except TrainingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if result is not None:
        print(f"done: {settings.results / 'report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
