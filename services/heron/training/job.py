"""What the commands and the Kubernetes job do, end to end, with errors made readable.

`run_job(JobRequest)` is the Job, and training's public entry point: other parts (the demo)
reach training through it alone, re-exported by `heron.training` (docs/training.md). Every
expected failure (bad spec, bad labels, bad checkpoint, missing weights) becomes a
`TrainingError` whose message names the file/field; the CLI prints it and exits 1.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from heron.core.outputs import atomic_file
from heron.training.options import TrainOptions

if TYPE_CHECKING:
    from heron.training.dataset import LabelledImage
    from heron.training.export import ExportReport
    from heron.training.int8 import Int8Result
    from heron.training.prune.pruner import PruneOptions, PruneReport
    from heron.training.settings import TrainingSettings
    from heron.training.train import TrainResult
    from heron.training.validation import ValidationResult

log = logging.getLogger(__name__)
SPEC_COPY = "experiment_spec"
ONNX_FILE = "model.onnx"
REPORT_FILE = "report.json"
KITTI_FOLDER = "kitti"
PRUNED_MODEL = "pruned/model.pt"  # heron prune's output, inside the results folder
RETRAIN_FOLDER = "retrain"  # the retrain's own results folder (checkpoints, metrics, model.pt)

# The Job's steps, in order; `on_step` hears each as it starts (the Kubernetes Job prints
# `heron-step: <step>`, which the operator shows as a TrainingRun's status.step).
Step = Literal["Train", "Prune", "Retrain", "Evaluate", "Export", "Calibrate"]
STEPS: tuple[Step, ...] = get_args(Step)
CalibrationMethod = Literal["auto", "entropy", "percentile", "minmax"]


class TrainingError(Exception):
    """A failure the user can fix; the message says what and where."""


@contextmanager
def readable_errors() -> Iterator[None]:
    """Training's own failures as `TrainingError`s, naming the file or field."""
    from heron.core.config.diagnostics import ConfigError
    from heron.training.checkpoint import CheckpointError
    from heron.training.model import PretrainedWeightsError
    from heron.training.predict import ModelFileError
    from heron.training.settings import SettingsError
    from heron.training.train import ResumeError

    try:
        yield
    except (
        ConfigError,
        CheckpointError,
        PretrainedWeightsError,
        ModelFileError,
        SettingsError,
        ResumeError,
        FileNotFoundError,
    ) as e:
        raise TrainingError(str(e)) from e
    except ValueError as e:  # DataFormatError and the spec/settings checks are ValueErrors
        raise TrainingError(str(e)) from e


def load_training_spec(
    spec_path: Path,
) -> tuple[TrainingSettings, list[LabelledImage], list[LabelledImage]]:
    """Settings plus training and validation images of a TAO spec."""
    from heron.core.config.tao import load_experiment_spec
    from heron.training import spec as spec_module
    from heron.training.dataset import from_kitti

    with readable_errors():
        loaded = load_experiment_spec(spec_path)
        for warning in loaded.diagnostics:
            log.warning("%s", warning)
        message: Any = loaded.message
        base = spec_path.resolve().parent
        settings = spec_module.from_experiment(message, base)
        train_sets, val_sets = spec_module.datasets(message, base)
        train_items, train_summary = from_kitti((s for d in train_sets for s in d), settings)
        val_items, _ = from_kitti((s for d in val_sets for s in d), settings)
    if not train_items:
        raise TrainingError(f"{spec_path}: dataset_config names no training images")
    log.info(
        "%d training images (%s), %d validation images; ignored classes: %s",
        len(train_items),
        dict(train_summary.boxes),
        len(val_items),
        dict(train_summary.ignored) or "none",
    )
    return settings, train_items, val_items


def run_training(
    spec_path: Path, results: Path, options: TrainOptions, *, rich_logs: bool = False
) -> TrainResult:
    from heron.training.train import train

    configure_logging(rich_logs)
    settings, train_items, val_items = load_training_spec(spec_path)
    _copy_spec(spec_path, results)
    with readable_errors():
        return train(settings, train_items, val_items, results, options)


def _copy_spec(spec_path: Path, results: Path) -> None:
    results.mkdir(parents=True, exist_ok=True)
    copy = results / (SPEC_COPY + spec_path.suffix)
    if not (copy.exists() and copy.samefile(spec_path)):  # resuming from the copy itself
        with atomic_file(copy) as tmp:
            shutil.copyfile(spec_path, tmp)


def evaluate_model(model: Path, data: Path) -> ValidationResult:
    """AP of a checkpoint or ONNX file on a KITTI folder, in network-input pixels."""
    import torch

    from heron.evaluation.kitti import KittiDataset
    from heron.training.dataset import DetectionDataset, ImageCache, from_kitti
    from heron.training.predict import load_runner
    from heron.training.validation import ground_truth, predict_with_runner, score

    with readable_errors():
        runner = load_runner(model, "cpu")
        settings = runner.settings
        items, _ = from_kitti(KittiDataset(data), settings)
        if not items:
            raise TrainingError(f"{data}: no images to evaluate")
        w, h = settings.model.input_width, settings.model.input_height
        cache = ImageCache.build(DetectionDataset(items, w, h), torch.device("cpu"))
        return score(predict_with_runner(runner, cache), ground_truth(cache), settings)


def export_model(
    model: Path, output: Path, check_images: Path | None, max_images: int = 8
) -> ExportReport:
    """ONNX (or a .pt2 program) at `output`, written under a temporary name and renamed once
    the parity check passed."""
    from heron.training.export import export_onnx, export_program
    from heron.training.predict import image_paths

    with readable_errors(), atomic_file(output) as tmp:
        if output.suffix.lower() == ".pt2":
            report = export_program(model, tmp)
        else:
            paths = image_paths(check_images)[:max_images] if check_images else []
            report = export_onnx(model, tmp, paths)
    return replace(report, onnx=output)


@dataclass(frozen=True)
class VocData:
    """Pascal VOC images to train on instead of the spec's `dataset_config`.

    The Job converts them to KITTI at the network's input size in RESULTS/kitti (a rerun in the
    same folder finds them converted) and holds a seeded share out to validate and score on.
    """

    folder: Path  # holds annotations/ (VOC XML) and images/
    # VOC class -> the KITTI label that the spec's target_class_mapping reads
    class_map: Mapping[str, str]
    hold_out_percent: float = 20.0
    seed: int = 42  # of the hold-out's shuffle; training's own seed is the spec's random_seed

    def __post_init__(self) -> None:
        if not 0.0 < self.hold_out_percent < 100.0:
            raise ValueError(
                "VocData.hold_out_percent: expected a percentage in (0, 100), "
                f"got {self.hold_out_percent}"
            )


@dataclass(frozen=True)
class PruneStep:
    """Prune the trained model (`heron prune`, docs/pruning.md), then retrain the pruned network.

    `options` are heron prune's own (`heron.training.prune.pruner.PruneOptions`, TAO's defaults,
    checked when made). The retrain reads `retrain_spec` (its recipe and its dataset_config),
    else the training spec; either way it starts from the pruned checkpoint (`load_graph` with
    `pretrained_model_file` set to it, whatever the spec names there).
    """

    options: PruneOptions
    retrain_spec: Path | None = None


@dataclass(frozen=True)
class CalibrationStep:
    """INT8 calibration of the exported model (`heron calibrate`, docs/engine.md) and the AP of
    its INT8 models on the validation images. A field left None is heron calibrate's default."""

    images: Path | None = None  # the calibration images; None: the training images
    batches: int | None = None
    batch_size: int | None = None
    method: CalibrationMethod | None = None
    percentile: float | None = None  # only with method "percentile"

    def __post_init__(self) -> None:
        # Checked here, before hours of training, with the bounds of heron calibrate's options.
        if self.batches is not None and self.batches < 1:
            raise ValueError(f"CalibrationStep.batches: expected 1 or more, got {self.batches}")
        if self.batch_size is not None and not 1 <= self.batch_size <= 256:
            raise ValueError(
                f"CalibrationStep.batch_size: expected 1..256 images, got {self.batch_size}"
            )
        if self.method is not None and self.method not in get_args(CalibrationMethod):
            raise ValueError(
                f"CalibrationStep.method: expected one of {get_args(CalibrationMethod)}, "
                f"got {self.method!r}"
            )
        if self.percentile is not None:
            if self.method != "percentile":
                raise ValueError(
                    "CalibrationStep.percentile: only read with method 'percentile', "
                    f"got method {self.method or 'auto (the default)'}"
                )
            if not 50.0 < self.percentile <= 100.0:
                raise ValueError(
                    f"CalibrationStep.percentile: expected (50, 100], got {self.percentile}"
                )

    def arguments(self) -> list[str]:
        """heron calibrate's options for the fields given (images aside)."""
        given = (
            ("--batches", self.batches),
            ("--batch-size", self.batch_size),
            ("--method", self.method),
            ("--percentile", self.percentile),
        )
        return [arg for flag, value in given if value is not None for arg in (flag, str(value))]


@dataclass(frozen=True)
class JobRequest:
    """One training Job: train, score on the validation images, export ONNX, into `results`.

    `python -m heron.training` sets `spec`, `results` and `options` from its arguments or the
    environment. The other fields default to the spec; they cut a run down to a small budget
    (the demo's few minutes on a CPU) and leave alone everything that decides what is learned.
    """

    spec: Path  # TAO DetectNet_v2 experiment spec (text or YAML)
    results: Path  # checkpoints, metrics, curves, model.pt, model.onnx, report.json
    options: TrainOptions = field(default_factory=TrainOptions)
    voc: VocData | None = None  # the data, instead of the spec's dataset_config
    input_size: tuple[int, int] | None = None  # (width, height) instead of the spec's
    # Instead of the spec's num_epochs, with a checkpoint after every epoch and validation
    # after the last only. 0: no training; the network as built (its pretrained backbone,
    # untrained heads) is exported, and no data is read.
    epochs: int | None = None
    # Instead of a number of epochs: one epoch, timed, then as many in all as fit in budget_s.
    budget_s: float | None = None
    prune: PruneStep | None = None  # after training: prune, then retrain (epochs apply to both)
    calibration: CalibrationStep | None = None  # after export: INT8 calibration and its AP

    def __post_init__(self) -> None:
        if self.epochs is not None and self.epochs < 0:
            raise ValueError(f"JobRequest.epochs: expected 0 or more, got {self.epochs}")
        if self.budget_s is not None:
            if self.epochs is not None:
                raise ValueError("JobRequest: expected epochs or budget_s, got both")
            if self.budget_s <= 0:
                raise ValueError(f"JobRequest.budget_s: expected seconds > 0, got {self.budget_s}")
        if self.prune is not None and (self.budget_s is not None or self.epochs == 0):
            raise ValueError(
                "JobRequest.prune: expected a trained model to prune, with epochs (not a "
                "time budget, which covers one training only) other than 0"
            )
        if self.calibration is not None and self.calibration.images is None and self.epochs == 0:
            raise ValueError(
                "JobRequest.calibration.images: a Job of no epochs reads no training images "
                "to calibrate on; name the calibration images"
            )

    def settings(self) -> TrainingSettings:
        """What this Job trains with: the spec's settings with this request's cuts.

        Raises TrainingError naming the spec when it cannot be read or the cuts do not fit it.
        """
        from heron.core.config.tao import load_experiment_spec
        from heron.training.spec import from_experiment

        with readable_errors():
            # Settings never depend on where the data is: the spec's data paths are checked
            # where the data is read, if this Job reads the spec's data at all.
            loaded = load_experiment_spec(self.spec, check_paths=False)
            for warning in loaded.diagnostics:
                log.warning("%s", warning)
            message: Any = loaded.message
            return _cut_down(from_experiment(message, self.spec.resolve().parent), self)


def _cut_down(settings: TrainingSettings, request: JobRequest) -> TrainingSettings:
    with readable_errors():  # an input size the network cannot take is a SettingsError
        if request.input_size is not None:
            width, height = request.input_size
            model = replace(settings.model, input_width=width, input_height=height)
            settings = replace(settings, model=model)
        epochs = 1 if request.budget_s is not None else request.epochs
        return _short_run(settings, epochs) if epochs else settings


def _short_run(settings: TrainingSettings, epochs: int) -> TrainingSettings:
    """`epochs` epochs, a checkpoint after each (a budgeted run resumes from its timed first
    epoch's) and validation after the last only."""
    return replace(
        settings,
        optim=replace(settings.optim, num_epochs=epochs, checkpoint_interval=1),
        evaluation=replace(
            settings.evaluation, validation_period=epochs, first_validation_epoch=epochs
        ),
    )


@dataclass(frozen=True)
class JobResult:
    train: TrainResult  # the final model's training: the retrain when the Job pruned
    validation: ValidationResult | None  # None without validation images
    export: ExportReport
    pruning: PruneReport | None = None  # with JobRequest.prune
    int8: Int8Result | None = None  # with JobRequest.calibration


def run_job(
    request: JobRequest,
    *,
    say: Callable[[str], None] = log.info,
    on_step: Callable[[Step], None] | None = None,
) -> JobResult | None:
    """The Kubernetes training job: train → (prune → retrain) → evaluate on the validation data
    → export ONNX → (calibrate INT8 and score it).

    Everything lands in `request.results` (a PVC in the cluster): checkpoints, metrics.jsonl,
    curves, model.pt, model.onnx, int8/ and report.json. Ranks other than 0 return None after
    training. `say` hears the Job's steps (conversion, split, the budget's epochs); `on_step`
    each step of STEPS as it starts. Every failure the user can fix is a TrainingError naming
    the file or field.
    """
    step = on_step or (lambda _: None)
    results = request.results
    step("Train")
    _check_before_training(request)
    settings, train_items, val_items = _job_data(request, say)
    if settings.optim.enable_qat:
        _refuse_calibrating_qat(request)
    _copy_spec(request.spec, results)
    trained = _train(request, settings, train_items, val_items, say)
    if int(os.environ.get("RANK", "0")) != 0:
        return None  # rank 0 prunes, evaluates and exports
    pruning = None
    if request.prune is not None:
        step("Prune")
        pruning = _prune(trained.final_model, results / PRUNED_MODEL, request.prune.options)
        step("Retrain")
        trained, train_items, val_items = _retrain(request, request.prune, train_items, val_items)
    step("Evaluate")
    validation = _score(trained.final_model, val_items, results) if val_items else None
    step("Export")
    exported = _export(trained.final_model, results / ONNX_FILE, val_items)
    int8 = None
    if exported.cpu_form is not None:  # a QAT retrain spec: known only now
        _refuse_calibrating_qat(request)
    if request.calibration is not None:
        from heron.training.int8 import calibrate_and_score

        step("Calibrate")
        int8 = calibrate_and_score(
            exported.onnx, results, request.calibration,
            train_items=train_items, val_items=val_items, fp32=validation,
        )  # fmt: skip
    result = JobResult(trained, validation, exported, pruning, int8)
    _write_report(result, results)
    return result


def _refuse_calibrating_qat(request: JobRequest) -> None:
    """A QAT model trains with its own int8 ranges: there is nothing to calibrate."""
    from heron.training.qat import CPU_FORM_SUFFIX

    if request.calibration is not None:
        cpu = Path(ONNX_FILE).stem + CPU_FORM_SUFFIX
        raise TrainingError(
            "training_config.enable_qat: the model trains through int8 and exports as INT8 "
            f"({ONNX_FILE}: TensorRT's Q/DQ model; {cpu}: the CPU form); leave "
            "out JobRequest.calibration (post-training calibration), or train without QAT"
        )


def _check_before_training(request: JobRequest) -> None:
    """What would fail after training, refused before it."""
    if request.prune is not None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise TrainingError(
            "prune: the prune and the retrain run in one process; start the Job without "
            "torchrun (one GPU) to prune"
        )
    for path, what in (
        (request.prune and request.prune.retrain_spec, "the retrain spec"),
        (request.calibration and request.calibration.images, "the calibration images"),
    ):
        if path and not path.exists():
            raise TrainingError(f"{path}: no such file or folder ({what})")


def _prune(model: Path, output: Path, options: PruneOptions) -> PruneReport:
    """`heron prune`'s library call: the trained model, narrowed, as a checkpoint."""
    from heron.training.prune.pruner import prune_checkpoint

    with readable_errors():
        report = prune_checkpoint(model, output, options)
    before, after = report.before.parameters, report.after.parameters
    log.info("pruned %s: %d → %d parameters (%s)", model, before, after, output)
    return report


def _retrain(
    request: JobRequest,
    prune: PruneStep,
    train_items: list[LabelledImage],
    val_items: list[LabelledImage],
) -> tuple[TrainResult, list[LabelledImage], list[LabelledImage]]:
    """Train the pruned network (TAO's retrain) into RESULTS/retrain: the retrain spec's
    recipe and data, else the training spec's; the network is always the pruned checkpoint."""
    from heron.training.train import train

    folder, spec = request.results / RETRAIN_FOLDER, prune.retrain_spec
    pruned = str(request.results / PRUNED_MODEL)
    if spec is None:
        settings = request.settings()
    else:
        if request.voc is not None:  # the VOC data stands in for every spec's dataset_config
            settings = replace(request, spec=spec).settings()
        else:
            loaded, train_items, val_items = load_training_spec(spec)
            settings = _cut_down(loaded, request)
        named = settings.model.pretrained_model_file
        if named not in ("", pruned):
            log.warning("%s: retraining the pruned %s, not %s", spec, pruned, named)
    model = replace(settings.model, pretrained_model_file=pruned, load_graph=True)
    _copy_spec(spec or request.spec, folder)
    with readable_errors():
        trained = train(
            replace(settings, model=model), train_items, val_items, folder, request.options
        )
    return trained, train_items, val_items


def _export(model: Path, onnx: Path, val_items: list[LabelledImage]) -> ExportReport:
    """model.onnx, with a parity check on up to 8 validation images."""
    from heron.training.export import export_onnx

    check = [item.image for item in val_items[:8]]
    with readable_errors(), atomic_file(onnx) as tmp:
        return replace(export_onnx(model, tmp, check), onnx=onnx)


def _write_report(result: JobResult, results: Path) -> None:
    """report.json: the run's numbers, and its files relative to the results folder (what a
    TrainingRun's status.artifacts names)."""
    trained, validation, int8 = result.train, result.validation, result.int8
    report: dict[str, Any] = {
        "epochs": trained.epochs,
        "steps": trained.steps,
        "train_seconds": round(trained.wall_s, 1),
        "images_per_s": round(trained.images_per_s, 1),
        "ap": validation.ap if validation else None,
        "mAP": validation.mean_ap if validation else None,
        "onnx": str(result.export.onnx),
        "onnx_max_abs_diff": result.export.max_abs_diff,
        "pruning": result.pruning.to_dict() if result.pruning else None,
        "int8": int8.to_dict(results) if int8 else None,
        "artifacts": {
            "checkpoint": _relative(trained.final_model, results),
            "onnx": _relative(result.export.onnx, results),
            "calibrationCache": _relative(int8.cache, results) if int8 else None,
            "report": REPORT_FILE,
        },
    }
    with atomic_file(results / REPORT_FILE) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")


def _relative(path: Path, folder: Path) -> str:
    return path.relative_to(folder).as_posix()


def _job_data(
    request: JobRequest, say: Callable[[str], None]
) -> tuple[TrainingSettings, list[LabelledImage], list[LabelledImage]]:
    if request.epochs == 0:
        return request.settings(), [], []
    if request.voc is None:
        settings, train_items, val_items = load_training_spec(request.spec)
        return _cut_down(settings, request), train_items, val_items
    settings = request.settings()
    return settings, *_voc_data(request.voc, request.results / KITTI_FOLDER, settings, say)


def _voc_data(
    voc: VocData, kitti: Path, settings: TrainingSettings, say: Callable[[str], None]
) -> tuple[list[LabelledImage], list[LabelledImage]]:
    """(training, held-out) images of `voc`, converted to KITTI in `kitti` unless they are."""
    from heron.evaluation.kitti import KittiDataset
    from heron.training.data.convert import convert_samples
    from heron.training.data.split import partition_random
    from heron.training.data.voc import from_voc
    from heron.training.dataset import from_kitti

    size = (settings.model.input_width, settings.model.input_height)
    images = kitti / "images"
    kitti.parent.mkdir(parents=True, exist_ok=True)
    with readable_errors():
        samples = list(from_voc(voc.folder / "annotations", voc.folder / "images"))
        if not samples:
            raise TrainingError(f"{voc.folder}: no VOC annotations to train on")
        done = images.is_dir() and len(list(images.glob("*.jpg"))) == len(samples)
        if not done:
            say(f"converting {len(samples)} VOC images to KITTI at {size[0]}x{size[1]}")
            convert_samples(samples, kitti, class_map=voc.class_map, size=size, overwrite=True)
        names = sorted(p.stem for p in images.glob("*.jpg"))
        held_out, kept = partition_random(names, voc.hold_out_percent, voc.seed)
        train_items, val_items = (
            from_kitti(KittiDataset(kitti, images=[images / f"{n}.jpg" for n in part]), settings)[0]
            for part in (kept, held_out)
        )
    say(f"training at {size[0]}x{size[1]}: {len(train_items)} images, {len(val_items)} held out")
    return train_items, val_items


def _train(
    request: JobRequest,
    settings: TrainingSettings,
    train_items: list[LabelledImage],
    val_items: list[LabelledImage],
    say: Callable[[str], None],
) -> TrainResult:
    from heron.training.train import train

    results, options = request.results, request.options
    if request.epochs == 0:
        return _untrained(settings, results)
    if request.budget_s is None:
        with readable_errors():
            return train(settings, train_items, val_items, results, options)
    started = time.monotonic()
    with readable_errors():
        first = train(settings, train_items, val_items, results, replace(options, validate=False))
    epoch_s = max(time.monotonic() - started, 1.0)
    epochs = int(request.budget_s // epoch_s)
    if epochs < 2:
        say(f"the first epoch took {epoch_s:.0f} s: no time left in the budget for more")
        return first
    say(f"the first epoch took {epoch_s:.0f} s: {epochs} in all")
    with readable_errors():  # resumes after the first epoch's checkpoint
        return train(_short_run(settings, epochs), train_items, val_items, results, options)


def _untrained(settings: TrainingSettings, results: Path) -> TrainResult:
    """The network as built, saved as the final model of a run of no epochs."""
    from heron.training import checkpoint
    from heron.training.network import build_model
    from heron.training.train import FINAL_MODEL, TrainResult

    with readable_errors():
        model, loaded = build_model(settings.model, len(settings.classes))
    if loaded is not None:
        log.info("pretrained weights: %s", loaded)
    final = results / FINAL_MODEL
    checkpoint.save(final, checkpoint.Checkpoint(settings, model.state_dict(), epoch=0, step=0))
    return TrainResult(results, final, epochs=0, steps=0, wall_s=0.0, images_per_s=0.0)


def _score(model: Path, items: list[LabelledImage], results: Path) -> ValidationResult:
    from heron.training.validation import write_pr_curves

    validation = score_model(model, items)
    with readable_errors():
        write_pr_curves(validation, results / "pr_curves.png")
    return validation


def score_model(model: Path, items: list[LabelledImage]) -> ValidationResult:
    """AP of a checkpoint or ONNX file (FP32 or INT8) on labelled images, in network-input
    pixels at the model's own input size, on the CPU: how the Job scores every model it makes."""
    import torch

    from heron.training.dataset import DetectionDataset, ImageCache
    from heron.training.predict import load_runner
    from heron.training.validation import ground_truth, predict_with_runner, score

    with readable_errors():
        runner = load_runner(model, "cpu")
        s = runner.settings
        w, h = s.model.input_width, s.model.input_height
        cache = ImageCache.build(DetectionDataset(items, w, h), torch.device("cpu"))
        return score(predict_with_runner(runner, cache), ground_truth(cache), s)


def configure_logging(rich_logs: bool) -> None:
    """INFO logs of heron.* once: through rich's global console (the one the progress bar
    draws on, so log lines land above the bar) or as plain lines (pods).

    Under torchrun every rank reads the same spec and data, so ranks other than 0 log errors
    only: four GPUs would otherwise print every spec warning and summary four times.
    """
    root = logging.getLogger("heron")
    if root.handlers:
        return
    if rich_logs:
        from rich.logging import RichHandler

        root.addHandler(RichHandler(show_path=False))
    else:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        root.addHandler(handler)
    root.setLevel(log_level())


def log_level() -> int:
    """INFO on rank 0 (or without torchrun), ERROR on the other ranks."""
    return logging.INFO if os.environ.get("RANK", "0") == "0" else logging.ERROR
