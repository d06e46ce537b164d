"""Validation: run the model over a cached data set, cluster, and score with TAO's AP.

Detections and ground truth are compared in network-input pixels (TAO evaluates at the
network's resolution, so `evaluation_box_config` sizes mean input pixels too).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from heron.evaluation.images import EVALUATION_BATCH_SIZE, to_float
from heron.training.dataset import ImageCache
from heron.training.settings import TrainingSettings

if TYPE_CHECKING:
    from heron.core.detections import Detections
    from heron.evaluation.ap import EvalReport, EvaluationConfig, GroundTruth
    from heron.training.predict import Runner


@dataclass(frozen=True)
class ValidationResult:
    ap: dict[str, float]
    mean_ap: float
    report: EvalReport

    def as_record(self) -> dict[str, Any]:
        return {"ap": self.ap, "mAP": self.mean_ap}


@torch.no_grad()
def predict_cache(
    model: nn.Module,
    *,
    cache: ImageCache,
    settings: TrainingSettings,
    device: torch.device,
    batch_size: int = 16,
    amp: bool = False,
) -> list[Detections]:
    """Detections (network-input pixels) for every cached image, in cache order."""
    from heron.training.predict import decode

    was_training = model.training
    model.eval()
    out: list[Detections] = []
    for start in range(0, len(cache), batch_size):
        index = torch.arange(start, min(start + batch_size, len(cache)))
        images, _, _ = cache.batch(index, device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            cov, bbox = model(to_float(images))
        out.extend(decode(cov.float().cpu().numpy(), bbox.float().cpu().numpy(), settings))
    model.train(was_training)
    return out


def ground_truth(cache: ImageCache) -> list[GroundTruth]:
    from heron.evaluation.ap import GroundTruth

    boxes = cache.boxes.cpu().numpy()
    labels = cache.labels.cpu().numpy()
    return [GroundTruth(b[lab >= 0], lab[lab >= 0]) for b, lab in zip(boxes, labels, strict=True)]


def evaluation_config(settings: TrainingSettings) -> EvaluationConfig:
    """`heron.evaluation.ap`'s config from `evaluation_config` (TAO semantics), converted as
    the engine's INT8 gate converts it (`heron.evaluation.model_settings.evaluation_config`)."""
    from heron.evaluation import model_settings

    e = settings.evaluation
    return model_settings.evaluation_config(
        settings.classes, e.minimum_overlap, e.box_limits, e.average_precision_mode
    )


def score(
    predictions: list[Detections], truth: list[GroundTruth], settings: TrainingSettings
) -> ValidationResult:
    from heron.evaluation.ap import evaluate

    report = evaluate(predictions, truth, list(settings.classes), evaluation_config(settings))
    ap = {c.name: float(c.average_precision) for c in report.classes}
    return ValidationResult(ap, float(report.mean_average_precision), report)


def predict_with_runner(
    runner: Runner, cache: ImageCache, batch_size: int = EVALUATION_BATCH_SIZE
) -> list[Detections]:
    """Like `predict_cache`, through a loaded model file (checkpoint or ONNX)."""
    from heron.training.predict import decode

    out: list[Detections] = []
    for start in range(0, len(cache), batch_size):
        index = torch.arange(start, min(start + batch_size, len(cache)))
        images, _, _ = cache.batch(index, torch.device("cpu"))
        cov, bbox = runner(to_float(images).numpy())
        out.extend(decode(cov, bbox, runner.settings))
    return out


def validate(
    model: nn.Module,
    cache: ImageCache,
    settings: TrainingSettings,
    device: torch.device,
    amp: bool = False,
) -> ValidationResult:
    predictions = predict_cache(model, cache=cache, settings=settings, device=device, amp=amp)
    return score(predictions, ground_truth(cache), settings)


def write_pr_curves(result: ValidationResult, png: Path) -> Path:
    from heron.evaluation.ap import plot_pr_curves

    plot_pr_curves(result.report, png)
    return png
