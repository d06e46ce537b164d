"""The INT8 accuracy gate: per-class AP of each INT8 model (ONNX Runtime) against FP32 on a
KITTI validation folder, with TAO detectnet_v2 AP semantics.

Scoring takes everything from heron.evaluation, the layer training scores with too: the model's
own settings from its metadata (`model_settings`), the KITTI labels (`kitti`), the decoded and
resized pixels (`images`), heron.postprocess clustering with training's parameters, and TAO's
AP (`ap`). So the numbers here are the numbers `heron evaluate` prints for the same model and
folder (tests/engine/test_accuracy.py checks they are identical).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from heron.engine.errors import AccuracyGateError, EngineError, ModelFileError

if TYPE_CHECKING:
    from heron.evaluation.ap import EvalReport, GroundTruth
    from heron.evaluation.kitti import KittiSample
    from heron.evaluation.model_settings import DetectorSettings
    from heron.postprocess import Detections


@dataclass(frozen=True)
class ClassDelta:
    name: str
    fp32: float  # AP in points (0–100)
    int8: float

    @property
    def drop(self) -> float:
        return self.fp32 - self.int8


@dataclass(frozen=True)
class VariantReport:
    label: str  # e.g. "tensorrt (S8S8 Q/DQ)"
    model: Path
    fp32_map: float
    int8_map: float
    classes: tuple[ClassDelta, ...]

    @property
    def drop(self) -> float:
        return self.fp32_map - self.int8_map

    def table(self) -> str:
        rows = [f"{'class':<20} {'FP32 AP':>8} {'INT8 AP':>8} {'drop':>7}"]
        rows += [f"{c.name:<20} {c.fp32:8.2f} {c.int8:8.2f} {c.drop:7.2f}" for c in self.classes]
        rows.append(f"{'mAP':<20} {self.fp32_map:8.2f} {self.int8_map:8.2f} {self.drop:7.2f}")
        return "\n".join(rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "model": str(self.model),
            "fp32_mAP": self.fp32_map,
            "int8_mAP": self.int8_map,
            "mAP_drop": self.drop,
            "classes": {
                c.name: {"fp32": c.fp32, "int8": c.int8, "drop": c.drop} for c in self.classes
            },
        }


def evaluate_ap(model: Path, data: Path) -> tuple[dict[str, float], float]:
    """Per-class AP and mAP in points of `model` (ONNX) on the KITTI folder `data`."""
    from heron.evaluation.errors import DataFormatError
    from heron.evaluation.model_settings import ModelSettingsError

    try:
        report = score_onnx(model, data)
    except (DataFormatError, ModelSettingsError) as e:
        raise EngineError(f"evaluating {model} on {data}: {e}") from None
    ap = {c.name: 100.0 * c.average_precision for c in report.classes}
    return ap, 100.0 * report.mean_average_precision


def score_onnx(model: Path, data: Path) -> EvalReport:
    """TAO AP of an ONNX detector on a KITTI folder, in network-input pixels, as training
    scores it: same pixels, batches, clustering and evaluation config."""
    from heron.evaluation.ap import evaluate
    from heron.evaluation.images import EVALUATION_BATCH_SIZE
    from heron.evaluation.kitti import KittiDataset
    from heron.evaluation.model_settings import (
        BBOX_NAME,
        COV_NAME,
        INPUT_NAME,
        settings_from_metadata,
    )
    from heron.postprocess import postprocess

    session = _session(model)
    settings = settings_from_metadata(session.get_modelmeta().custom_metadata_map, str(model))
    samples = list(KittiDataset(data))
    if not samples:
        raise EngineError(f"{data}: no images to evaluate")
    predictions: list[Detections] = []
    truth: list[GroundTruth] = []
    for start in range(0, len(samples), EVALUATION_BATCH_SIZE):
        images, ground = _network_batch(samples[start : start + EVALUATION_BATCH_SIZE], settings)
        cov, bbox = session.run([COV_NAME, BBOX_NAME], {INPUT_NAME: images})
        predictions += postprocess(
            np.asarray(cov), np.asarray(bbox), list(settings.clustering), coding=settings.coding
        )
        truth += ground
    return evaluate(predictions, truth, list(settings.classes), settings.evaluation)


def _session(model: Path) -> Any:
    import onnxruntime as ort

    from heron.core.int8.qdq import scoring_options

    if not model.is_file():
        raise ModelFileError(f"{model}: no such ONNX file")
    try:
        options = scoring_options(model)
        return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own untyped errors for bad files
        raise ModelFileError(f"{model}: ONNX Runtime cannot load it ({e})") from None


def _network_batch(
    samples: list[KittiSample], settings: DetectorSettings
) -> tuple[np.ndarray, list[GroundTruth]]:
    """Float [0, 1] images at the network input and their scored boxes, scaled with them."""
    import torch

    from heron.evaluation.ap import GroundTruth
    from heron.evaluation.images import network_input, to_float

    index = {name: i for i, name in enumerate(settings.classes)}
    pixels, truth = [], []
    for sample in samples:
        boxes, labels = [], []
        for obj in sample.read_objects():
            target = settings.target_of(obj.name)
            if target is not None:
                boxes.append(obj.box)
                labels.append(index[target])
        image, scaled = network_input(
            sample.image,
            np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
            settings.input_width,
            settings.input_height,
        )
        pixels.append(image)
        truth.append(GroundTruth(scaled.numpy(), np.asarray(labels, dtype=np.int64)))
    return to_float(torch.stack(pixels)).numpy(), truth


def compare(
    fp32: tuple[Mapping[str, float], float], int8_model: Path, data: Path, label: str
) -> VariantReport:
    ap, mean = evaluate_ap(int8_model, data)
    classes = tuple(ClassDelta(name, fp32[0][name], ap[name]) for name in fp32[0])
    return VariantReport(label, int8_model, fp32[1], mean, classes)


def check_gate(reports: list[VariantReport], max_drop: float, next_steps: str = "") -> None:
    """AccuracyGateError with every failing variant's table when one loses > max_drop points;
    `next_steps` (what to try) ends the message."""
    failing = [r for r in reports if r.drop > max_drop]
    if failing:
        tables = "\n\n".join(
            f"{r.label}: mAP drop {r.drop:.2f} points\n{r.table()}" for r in failing
        )
        advice = f"\n{next_steps}" if next_steps else ""
        raise AccuracyGateError(
            f"INT8 loses more than {max_drop:.2f} points of mAP:\n{tables}{advice}"
        )
