"""The options `heron train` and the training Job (`python -m heron.training`, `heron
train-job`) share, declared once, and `JobSettings`: the model that checks what they fill.

typer reads the command line and each option's `HERON_TRAIN_*` variable (`--help` names it);
JobSettings validates the result, and its defaults are `TrainOptions`'s, so each default has one
home. An option declared here has no default of its own (None: not given, `given` drops it).
Only typer and pydantic are imported: `heron --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from heron.core.options import field_help, given
from heron.training.options import TrainOptions, check_device

ENV_PREFIX = "HERON_TRAIN_"
LogFormat = Literal["json", "console"]  # the services' `log.format` values (docs/runtime.md)


def env(name: str) -> str:
    """The variable that stands in for the option of JobSettings' field `name`."""
    return ENV_PREFIX + name.upper()


class JobSettings(BaseModel):
    """What the training Job's options (or their HERON_TRAIN_* variables) set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    spec: Path = Field(description="TAO DetectNet_v2 experiment spec (text or YAML).")
    results: Path = Field(description="Results folder: checkpoints, metrics, model files.")
    device: str | None = Field(
        TrainOptions.device, description="cpu, cuda or cuda:N; none: cuda when available."
    )
    compile: bool = Field(TrainOptions.compile, description="torch.compile the network (GPU).")
    progress: bool = Field(
        TrainOptions.progress,
        description="Progress: a bar on a terminal; elsewhere a line each epoch (epoch, loss, "
        "images/s, time left) and every 30 s within one.",
    )
    cudnn_benchmark: bool = Field(
        TrainOptions.cudnn_benchmark,
        description="cuDNN autotuning: ~20 s more in epoch 1, same speed after it.",
    )
    epochs: int | None = Field(
        None, ge=0, description="Instead of the spec's num_epochs (the retrain's too)."
    )
    log_format: LogFormat = Field(
        "console",
        description="json: one JSON object a line (progress and heron-step lines too, their "
        "numbers as fields), as the services log; console: lines for people.",
    )

    @field_validator("device")
    @classmethod
    def _device(cls, device: str | None) -> str | None:
        check_device(device)  # before hours of work; whether that GPU exists, at its start
        return device

    def train_options(self) -> TrainOptions:
        return TrainOptions(
            device=self.device,
            compile=self.compile,
            progress=self.progress,
            progress_logs=self.log_format == "json",
            cudnn_benchmark=self.cudnn_benchmark,
        )


# JobSettings' fields whose option is not `--<field-with-dashes>` (TAO's names).
_FLAGS = {"spec": "--experiment_spec_file", "results": "--results_dir"}


def job_settings(**options: Any) -> JobSettings:
    """JobSettings of the options given (None: not given); a usage error (exit 2) naming the
    option and its variable when one is wrong."""
    try:
        return JobSettings.model_validate(given(**options))
    except ValidationError as e:
        err = e.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else ""
        flag = _FLAGS.get(field) or "--" + field.replace("_", "-")
        problem = str(err["msg"])
        if err["type"] == "value_error":  # a validator's own message, which says what came
            problem = problem.removeprefix("Value error, ")
        else:
            problem += f", got {err['input']!r}"
        raise typer.BadParameter(
            problem, param_hint=f"'{flag}' (env var: '{env(field)}')"
        ) from None


KEY_HELP = (
    "TAO model key. Accepted for compatibility (Heron files are not encrypted); never printed."
)


def _help(name: str) -> str:
    return field_help(JobSettings, name)


SpecFile = Annotated[
    Path,
    typer.Option(
        "--experiment_spec_file", "-e", help=_help("spec"), envvar=env("spec"), show_default=False
    ),
]
ResultsDir = Annotated[
    Path,
    typer.Option(
        "--results_dir", "-r", help=_help("results"), envvar=env("results"), show_default=False
    ),
]
Key = Annotated[str | None, typer.Option("--key", "-k", help=KEY_HELP, show_default=False)]
Device = Annotated[
    str | None, typer.Option(help=_help("device"), envvar=env("device"), show_default=False)
]
Compile = Annotated[
    bool | None, typer.Option(help=_help("compile"), envvar=env("compile"), show_default=False)
]
ShowProgress = Annotated[
    bool | None, typer.Option(help=_help("progress"), envvar=env("progress"), show_default=False)
]
CudnnBenchmark = Annotated[
    bool | None,
    typer.Option(help=_help("cudnn_benchmark"), envvar=env("cudnn_benchmark"), show_default=False),
]
