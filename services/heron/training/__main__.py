"""`python -m heron.training`: the Kubernetes training job (train → evaluate → export ONNX).

Settings come from arguments or the environment (HERON_TRAIN_SPEC, HERON_TRAIN_RESULTS,
HERON_TRAIN_DEVICE, HERON_TRAIN_COMPILE); under torchrun every rank runs this, rank 0 writes.
All artifacts land in the results folder (a PersistentVolumeClaim in the cluster).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class JobSettings(BaseSettings):
    """The training job's settings; arguments override the environment."""

    model_config = SettingsConfigDict(env_prefix="HERON_TRAIN_", extra="forbid")

    spec: Path = Field(description="TAO DetectNet_v2 experiment spec (text or YAML).")
    results: Path = Field(description="Results folder: checkpoints, metrics, model files.")
    device: str | None = Field(None, description="cpu, cuda or cuda:N; default: auto.")
    compile: bool = Field(False, description="torch.compile the network (GPU).")
    progress: bool = Field(False, description="Progress bar (off: logs suit a pod better).")
    cudnn_benchmark: bool = Field(True, description="cuDNN autotuning (slower first epoch).")


def parse_args(argv: list[str]) -> JobSettings:
    parser = argparse.ArgumentParser(prog="python -m heron.training", description=__doc__)
    parser.add_argument("-e", "--experiment_spec_file", dest="spec", type=Path)
    parser.add_argument("-r", "--results_dir", dest="results", type=Path)
    parser.add_argument("-k", "--key", help="TAO model key: accepted, never used or printed")
    parser.add_argument("--device")
    parser.add_argument("--compile", action="store_true", default=None)
    parser.add_argument("--progress", action="store_true", default=None)
    parser.add_argument(
        "--no-cudnn-benchmark", dest="cudnn_benchmark", action="store_false", default=None
    )
    args = vars(parser.parse_args(argv))
    args.pop("key")
    return JobSettings(**{k: v for k, v in args.items() if v is not None})


def main(argv: list[str] | None = None) -> int:
    from pydantic import ValidationError

    from heron.training.job import JobRequest, TrainingError, configure_logging, run_job
    from heron.training.options import TrainOptions

    try:
        settings = parse_args(sys.argv[1:] if argv is None else argv)
    except ValidationError as e:
        missing = ", ".join(str(err["loc"][0]) for err in e.errors())
        print(
            f"error: missing or invalid settings: {missing} (pass -e/-r or set "
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
        result = run_job(JobRequest(settings.spec, settings.results, options))
    except TrainingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if result is not None:
        print(f"done: {settings.results / 'report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
