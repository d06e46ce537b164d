"""The INT8 accuracy gate: per-class AP of each INT8 model (ONNX Runtime) against FP32 on a
KITTI validation folder, with TAO detectnet_v2 AP semantics.

AP comes from heron.training's evaluation (`evaluate_model`: the model's own settings,
heron.postprocess clustering, TAO's matching), so the numbers here are the numbers `heron
evaluate` prints. This is the engine's only import of heron.training (see docs/engine.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heron.engine.errors import AccuracyGateError, EngineError


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
    from heron.training.job import TrainingError, evaluate_model

    try:
        result = evaluate_model(model, data)
    except TrainingError as e:
        raise EngineError(f"evaluating {model} on {data}: {e}") from None
    return {k: 100.0 * v for k, v in result.ap.items()}, 100.0 * result.mean_ap


def compare(
    fp32: tuple[Mapping[str, float], float], int8_model: Path, data: Path, label: str
) -> VariantReport:
    ap, mean = evaluate_ap(int8_model, data)
    classes = tuple(ClassDelta(name, fp32[0][name], ap[name]) for name in fp32[0])
    return VariantReport(label, int8_model, fp32[1], mean, classes)


def check_gate(reports: list[VariantReport], max_drop: float) -> None:
    """AccuracyGateError with every failing variant's table when one loses > max_drop points."""
    failing = [r for r in reports if r.drop > max_drop]
    if failing:
        tables = "\n\n".join(
            f"{r.label}: mAP drop {r.drop:.2f} points\n{r.table()}" for r in failing
        )
        raise AccuracyGateError(f"INT8 loses more than {max_drop:.2f} points of mAP:\n{tables}")
