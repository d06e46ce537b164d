"""What the commands and the Kubernetes job do, end to end, with errors made readable.

Every expected failure (bad spec, bad labels, bad checkpoint, missing weights) becomes a
`TrainingError` whose message names the file/field; the CLI prints it and exits 1.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heron.core.outputs import atomic_file, staged_folder

if TYPE_CHECKING:
    from heron.training.dataset import LabelledImage
    from heron.training.export import ExportReport
    from heron.training.settings import TrainingSettings
    from heron.training.train import TrainOptions, TrainResult
    from heron.training.validation import ValidationResult

log = logging.getLogger(__name__)
SPEC_COPY = "experiment_spec"
ONNX_FILE = "model.onnx"
REPORT_FILE = "report.json"


class TrainingError(Exception):
    """A failure the user can fix; the message says what and where."""


@contextmanager
def _readable_errors() -> Iterator[None]:
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

    with _readable_errors():
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
    results.mkdir(parents=True, exist_ok=True)
    copy = results / (SPEC_COPY + spec_path.suffix)
    if not (copy.exists() and copy.samefile(spec_path)):  # resuming from the copy itself
        with atomic_file(copy) as tmp:
            shutil.copyfile(spec_path, tmp)
    with _readable_errors():
        return train(settings, train_items, val_items, results, options)


def evaluate_model(model: Path, data: Path) -> ValidationResult:
    """AP of a checkpoint or ONNX file on a KITTI folder, in network-input pixels."""
    import torch

    from heron.evaluation.kitti import KittiDataset
    from heron.training.dataset import DetectionDataset, ImageCache, from_kitti
    from heron.training.predict import load_runner
    from heron.training.validation import ground_truth, predict_with_runner, score

    with _readable_errors():
        runner = load_runner(model, "cpu")
        settings = runner.settings
        items, _ = from_kitti(KittiDataset(data), settings)
        if not items:
            raise TrainingError(f"{data}: no images to evaluate")
        w, h = settings.model.input_width, settings.model.input_height
        cache = ImageCache.build(DetectionDataset(items, w, h), torch.device("cpu"))
        return score(predict_with_runner(runner, cache), ground_truth(cache), settings)


def infer_images(model: Path, images: Path, output: Path, batch_size: int = 8) -> tuple[int, int]:
    """KITTI prediction files and annotated JPEGs for every image; (images, detections).

    Written beside OUT/labels and OUT/images and moved into them at the end (predictions of
    other images already there stay): a failed run adds nothing.
    """
    from heron.evaluation.kitti import KittiObject, write_label_file
    from heron.training.predict import image_paths, load_runner, predict_paths

    with _readable_errors():
        runner = load_runner(model)
        paths = image_paths(images)
    with _readable_errors(), staged_folder(output, merge=True) as staging:
        (staging / "labels").mkdir()
        (staging / "images").mkdir()
        classes = runner.settings.classes
        count = boxes = 0
        for pred in predict_paths(runner, paths, batch_size):
            d = pred.detections
            objects = [
                KittiObject(
                    classes[int(c)],
                    x1=float(b[0]),
                    y1=float(b[1]),
                    x2=float(b[2]),
                    y2=float(b[3]),
                    score=float(s),
                )
                for b, s, c in zip(d.xyxy, d.scores, d.class_ids, strict=True)
            ]
            write_label_file(staging / "labels" / (pred.image.stem + ".txt"), objects)
            _annotate(pred.image, objects, staging / "images" / (pred.image.stem + ".jpg"))
            count, boxes = count + 1, boxes + len(objects)
    return count, boxes


COLOURS = ((0, 200, 0), (0, 0, 230), (230, 120, 0), (200, 0, 200), (0, 200, 200))


def _annotate(image: Path, objects: Sequence[Any], out: Path) -> None:
    import cv2

    picture = cv2.imread(str(image))
    if picture is None:
        raise TrainingError(f"{image}: OpenCV cannot read it")
    names = sorted({o.name for o in objects})
    for o in objects:
        colour = COLOURS[names.index(o.name) % len(COLOURS)]
        p1, p2 = (round(o.x1), round(o.y1)), (round(o.x2), round(o.y2))
        cv2.rectangle(picture, p1, p2, colour, 2)
        cv2.putText(
            picture,
            f"{o.name} {o.score:.2f}",
            (p1[0], max(p1[1] - 4, 10)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45,
            colour,
            1,
            cv2.LINE_AA,
        )
    cv2.imwrite(str(out), picture)


def export_model(
    model: Path, output: Path, check_images: Path | None, max_images: int = 8
) -> ExportReport:
    """ONNX (or a .pt2 program) at `output`, written under a temporary name and renamed once
    the parity check passed."""
    from heron.training.export import export_onnx, export_program
    from heron.training.predict import image_paths

    with _readable_errors(), atomic_file(output) as tmp:
        if output.suffix.lower() == ".pt2":
            report = export_program(model, tmp)
        else:
            paths = image_paths(check_images)[:max_images] if check_images else []
            report = export_onnx(model, tmp, paths)
    return replace(report, onnx=output)


@dataclass(frozen=True)
class JobResult:
    train: TrainResult
    validation: ValidationResult | None
    export: ExportReport


def run_job(spec_path: Path, results: Path, options: TrainOptions) -> JobResult | None:
    """The Kubernetes training job: train → evaluate on the validation data → export ONNX.

    Everything lands in `results` (a PVC in the cluster): checkpoints, metrics.jsonl, curves,
    model.pt, model.onnx and report.json. Ranks other than 0 return None after training.
    """
    import torch

    from heron.training.dataset import DetectionDataset, ImageCache
    from heron.training.predict import load_runner
    from heron.training.validation import (
        ground_truth,
        predict_with_runner,
        score,
        write_pr_curves,
    )

    trained = run_training(spec_path, results, options)
    if int(os.environ.get("RANK", "0")) != 0:
        return None  # rank 0 evaluates and exports
    _, _, val_items = load_training_spec(spec_path)
    validation = None
    if val_items:
        with _readable_errors():
            runner = load_runner(trained.final_model, "cpu")
            s = runner.settings
            w, h = s.model.input_width, s.model.input_height
            cache = ImageCache.build(DetectionDataset(val_items, w, h), torch.device("cpu"))
            validation = score(predict_with_runner(runner, cache), ground_truth(cache), s)
            write_pr_curves(validation, results / "pr_curves.png")
    check = [item.image for item in val_items[:8]]
    onnx = results / ONNX_FILE
    with _readable_errors(), atomic_file(onnx) as tmp:
        from heron.training.export import export_onnx

        exported = replace(export_onnx(trained.final_model, tmp, check), onnx=onnx)
    report = {
        "epochs": trained.epochs,
        "steps": trained.steps,
        "train_seconds": round(trained.wall_s, 1),
        "images_per_s": round(trained.images_per_s, 1),
        "ap": validation.ap if validation else None,
        "mAP": validation.mean_ap if validation else None,
        "onnx": str(exported.onnx),
        "onnx_max_abs_diff": exported.max_abs_diff,
    }
    with atomic_file(results / REPORT_FILE) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
    return JobResult(trained, validation, exported)


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
    root.setLevel(logging.INFO if os.environ.get("RANK", "0") == "0" else logging.ERROR)
