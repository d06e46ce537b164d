"""The Kubernetes training Job as a command: `python -m heron.training` (the training image's
entry point), also `heron train-job`. Train → (prune → retrain) → evaluate → export ONNX →
(calibrate INT8 and score it), all into the results folder (a PersistentVolumeClaim in the
cluster); under torchrun every rank runs it and rank 0 writes.

typer parses the command line and the HERON_TRAIN_* variables (`--help` names each); the
options `heron train` has too are declared once (`heron.training.cli_options`) and
`JobSettings` checks what they fill. A misused option ends the Job at once with exit status 2,
naming the option; a failure the user can fix (a bad spec, missing data) with 1.

Each step prints `heron-step: <Step>` as it starts: the operator's job_report and TrainingRun
controller read it as status.step. With `--log-format json` every line is a JSON object, the
step's too (`"message": "heron-step: Train", "step": "Train"`), and progress lines carry epoch,
loss, images_per_s and eta_s as fields.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from heron.core.cli_errors import fail
from heron.core.options import field_help, given
from heron.training.cli_options import (
    Compile,
    CudnnBenchmark,
    Device,
    JobSettings,
    Key,
    LogFormat,
    ResultsDir,
    ShowProgress,
    SpecFile,
    env,
    job_settings,
)

if TYPE_CHECKING:
    from heron.training.job import CalibrationStep, PruneStep, Step

PROG = "python -m heron.training"
SERVICE = "heron-training"  # the `service` of its JSON log lines
# The line the operator's job_report and TrainingRun controller look for
# (heron_operator.job_report.STEP_PREFIX; tests/training/test_job_steps.py keeps them equal).
STEP_PREFIX = "heron-step: "
log = logging.getLogger(__name__)

# The Job's entry point runs in pods: plain one-line errors and help, no rich panels.
app = typer.Typer(rich_markup_mode=None, pretty_exceptions_enable=False, add_completion=False)

# JobRequest's fields that an option sets, to name in its errors.
_REQUEST_FLAGS = {"epochs": "--epochs", "prune": "--prune", "calibration": "--calibrate"}
_PRUNE = "Prune and retrain (heron prune's options, docs/pruning.md)"
_CALIBRATE = "INT8 calibration (heron calibrate's options, docs/engine.md)"


@app.command("train-job")
def train_job(
    *,
    experiment_spec: SpecFile,
    results_dir: ResultsDir,
    key: Key = None,
    device: Device = None,
    compile: Compile = None,
    progress: ShowProgress = None,
    cudnn_benchmark: CudnnBenchmark = None,
    epochs: Annotated[
        int | None,
        typer.Option(help=field_help(JobSettings, "epochs"), envvar=env("epochs")),
    ] = None,
    log_format: Annotated[
        LogFormat | None,
        typer.Option(
            "--log-format",
            help=field_help(JobSettings, "log_format"),
            envvar=env("log_format"),
            show_default=False,
        ),
    ] = None,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune", help="Prune the trained model, retrain it.", rich_help_panel=_PRUNE
        ),
    ] = False,
    pth: Annotated[
        float | None,
        typer.Option(help="Threshold on the normalised filter norm.", rich_help_panel=_PRUNE),
    ] = None,
    normalizer: Annotated[
        str | None, typer.Option(help="max or L2.", rich_help_panel=_PRUNE)
    ] = None,
    equalization: Annotated[
        str | None,
        typer.Option(help="union, intersection, arithmetic_mean, ...", rich_help_panel=_PRUNE),
    ] = None,
    granularity: Annotated[
        int | None, typer.Option(help="Kept counts round up to this.", rich_help_panel=_PRUNE)
    ] = None,
    min_filters: Annotated[
        int | None, typer.Option(help="Filters kept at least.", rich_help_panel=_PRUNE)
    ] = None,
    retrain_spec: Annotated[
        Path | None,
        typer.Option(
            help="The retrain's spec; default: the training spec.", rich_help_panel=_PRUNE
        ),
    ] = None,
    calibrate: Annotated[
        bool,
        typer.Option(
            "--calibrate", help="Calibrate INT8 and score it.", rich_help_panel=_CALIBRATE
        ),
    ] = False,
    calibration_images: Annotated[
        Path | None,
        typer.Option(help="Default: the training images.", rich_help_panel=_CALIBRATE),
    ] = None,
    calibration_batches: Annotated[int | None, typer.Option(rich_help_panel=_CALIBRATE)] = None,
    calibration_batch_size: Annotated[int | None, typer.Option(rich_help_panel=_CALIBRATE)] = None,
    calibration_method: Annotated[
        str | None,
        typer.Option(
            help="auto (heron calibrate's default), entropy, percentile or minmax.",
            rich_help_panel=_CALIBRATE,
        ),
    ] = None,
    calibration_percentile: Annotated[
        float | None, typer.Option(help="With method percentile.", rich_help_panel=_CALIBRATE)
    ] = None,
) -> None:
    """The training Job (python -m heron.training): train, evaluate, export ONNX into RESULTS_DIR.

    With --prune, prune and retrain before the evaluation; with --calibrate, calibrate INT8
    after the export. Each step prints `heron-step: <Step>` as it starts."""
    del key  # accepted, never used or printed
    from heron.training.job import JobRequest, TrainingError, run_job

    settings = job_settings(
        spec=experiment_spec, results=results_dir, device=device, compile=compile,
        progress=progress, cudnn_benchmark=cudnn_benchmark, epochs=epochs, log_format=log_format,
    )  # fmt: skip
    prune_step = _prune_step(
        prune,
        {"pth": pth, "normalizer": normalizer, "equalization": equalization,
         "granularity": granularity, "min_filters": min_filters, "retrain_spec": retrain_spec},
    )  # fmt: skip
    calibration = _calibration_step(
        calibrate,
        {"images": calibration_images, "batches": calibration_batches,
         "batch_size": calibration_batch_size, "method": calibration_method,
         "percentile": calibration_percentile},
    )  # fmt: skip
    try:
        request = JobRequest(
            settings.spec, settings.results, settings.train_options(), epochs=settings.epochs,
            prune=prune_step, calibration=calibration,
        )  # fmt: skip
    except ValueError as e:  # the request's own checks: "JobRequest.prune: expected ..."
        field = str(e).removeprefix("JobRequest.").split(":", 1)[0].split(".", 1)[0]
        raise typer.BadParameter(str(e), param_hint=_hint(_REQUEST_FLAGS.get(field))) from None
    json_logs = settings.log_format == "json"
    _configure_logs(settings.log_format)
    try:
        result = run_job(request, on_step=_step_marker(json_logs))
    except TrainingError as e:
        if json_logs:
            log.error("error: %s", e)
            raise typer.Exit(1) from None
        raise fail(str(e)) from None
    except Exception as e:
        if not json_logs:
            raise  # Python's traceback, as ever
        # Every line a JSON object, the traceback too (its `exc` field); the message says what.
        log.exception("error: %s: %s", type(e).__name__, e)
        raise typer.Exit(1) from None
    if result is not None:
        report = settings.results / "report.json"
        if json_logs:
            log.info("done: %s", report, extra={"report": str(report)})
        else:
            print(f"done: {report}")


def _prune_step(prune: bool, options: dict[str, Any]) -> PruneStep | None:
    given_flags = [_flag(name) for name, value in options.items() if value is not None]
    if not prune:
        if given_flags:
            raise typer.BadParameter("prune options need --prune", param_hint=given_flags)
        return None
    from heron.training.job import PruneStep
    from heron.training.prune.pruner import PruneError, PruneOptions

    chosen = {"threshold": options["pth"]} | {
        name: options[name] for name in ("normalizer", "equalization", "granularity", "min_filters")
    }
    try:
        pruning = PruneOptions(**given(**chosen))
    except PruneError as e:  # it names the option: "[--pth] expected a threshold in [0, 1], ..."
        flag, _, problem = str(e).removeprefix("[").partition("] ")
        raise typer.BadParameter(problem, param_hint=[flag]) from None
    return PruneStep(pruning, options["retrain_spec"])


def _calibration_step(calibrate: bool, fields: dict[str, Any]) -> CalibrationStep | None:
    given_flags = [_flag(f"calibration_{name}") for name, value in fields.items()
                   if value is not None]  # fmt: skip
    if not calibrate:
        if given_flags:
            raise typer.BadParameter("calibration options need --calibrate", param_hint=given_flags)
        return None
    from heron.training.job import CalibrationStep

    try:
        return CalibrationStep(**fields)
    except ValueError as e:  # "CalibrationStep.batch_size: expected 1..256 images, got 0"
        field, _, problem = str(e).removeprefix("CalibrationStep.").partition(": ")
        raise typer.BadParameter(problem, param_hint=[_flag(f"calibration_{field}")]) from None


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _hint(flag: str | None) -> list[str] | None:
    """The option an error names, quoted as typer quotes it."""
    return [flag] if flag else None


def _configure_logs(fmt: LogFormat) -> None:
    """The services' logs (heron.core.runtime.logs) on stderr: JSON lines or console lines;
    ranks other than 0 log errors only (heron.training.job.log_level)."""
    from heron.core.runtime.logs import configure_logging
    from heron.training.job import log_level

    configure_logging(SERVICE, logging.getLevelName(log_level()), fmt)


def _step_marker(json_logs: bool) -> Callable[[Step], None]:
    """`heron-step: <Step>` as each step starts: a line of its own on stdout, or a JSON log line
    whose message it is (with the step as a field)."""

    def mark(step: Step) -> None:
        if json_logs:
            log.info("%s%s", STEP_PREFIX, step, extra={"step": step})
        else:
            print(f"{STEP_PREFIX}{step}", flush=True)

    return mark


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m heron.training`: the Job's exit status (2: a misused option; 1: a failure)."""
    try:
        app(args=list(sys.argv[1:] if argv is None else argv), prog_name=PROG)
    except SystemExit as e:  # typer's standalone mode ends every run with one
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0
