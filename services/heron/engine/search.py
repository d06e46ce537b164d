"""`--method auto`: choose the range method on held-out `select` images, never the gate's.

The histograms are collected once; a candidate is only another threshold per tensor, so each
costs two quantisations (the TensorRT Q/DQ S8S8 form and the ONNX Runtime U8S8 form) and one
scoring pass of each over the select images. The candidate whose worse form loses the least
mAP against FP32 on those images wins (ties: the earlier candidate). Candidates run in the
order of CANDIDATES until the time budget would be passed; the first always runs.

Without select images there is nothing to choose on: `auto` takes FALLBACK, the method that
lost least on the facemask model's select images (docs/benchmarks/int8.md).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heron.engine import accuracy
from heron.engine.accuracy import VariantReport
from heron.engine.options import Method

if TYPE_CHECKING:
    from heron.engine.histograms import HistogramCollector
    from heron.engine.model_info import ModelInfo

TENSORRT_LABEL = "TensorRT Q/DQ (S8S8)"
CPU_LABEL = "ONNX Runtime CPU (U8S8)"
SHORT = {TENSORRT_LABEL: "S8S8", CPU_LABEL: "U8S8"}


@dataclass(frozen=True)
class Recipe:
    """A way to pick each tensor's amax from its histogram."""

    method: Method  # never AUTO
    percentile: float = 0.0  # with PERCENTILE only

    def __post_init__(self) -> None:
        if self.method is Method.AUTO:
            raise ValueError("a recipe names a method: entropy, percentile or minmax, not auto")

    @property
    def label(self) -> str:
        if self.method is Method.PERCENTILE:
            return f"percentile {self.percentile:g}"
        return self.method.value

    def amax(self, collector: HistogramCollector, info: ModelInfo) -> dict[str, float]:
        amax = collector.amax(self.method.value, self.percentile)
        for output in info.outputs:
            # Never clip what the network returns: no later layer absorbs an output's clipping,
            # and a clipped coverage or box is a wrong detection. Outputs keep their full range.
            amax[output.name] = collector.histograms[output.name].amax
        return amax


# In the order `auto` tries them: the likeliest winners first, so a tight budget still scores
# them. Entropy is TensorRT's and DeepStream's own method; minmax clips nothing.
CANDIDATES = (
    Recipe(Method.PERCENTILE, 99.999),
    Recipe(Method.PERCENTILE, 99.99),
    Recipe(Method.ENTROPY),
    Recipe(Method.PERCENTILE, 99.9999),
    Recipe(Method.MINMAX),
)
FALLBACK = CANDIDATES[0]


@dataclass(frozen=True)
class CandidateScore:
    recipe: Recipe
    reports: tuple[VariantReport, ...]  # each INT8 form against FP32 on the select images
    seconds: float

    @property
    def worst_drop(self) -> float:
        return max(r.drop for r in self.reports)

    def to_dict(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe.label,
            "worst_mAP_drop": round(self.worst_drop, 4),
            "mAP_drop": {r.label: round(r.drop, 4) for r in self.reports},
            "seconds": round(self.seconds, 1),
        }


@dataclass(frozen=True)
class SearchReport:
    select_data: Path
    candidates: tuple[CandidateScore, ...]  # in the order they ran
    skipped: tuple[Recipe, ...]  # not started: the budget would have run out
    budget_s: float

    @property
    def best(self) -> CandidateScore:
        return min(self.candidates, key=lambda c: c.worst_drop)  # min keeps the first of ties

    @property
    def chosen(self) -> Recipe:
        return self.best.recipe

    def to_dict(self) -> dict[str, Any]:
        return {
            "select_data": str(self.select_data),
            "chosen": self.chosen.label,
            "rule": "least mAP drop of the worse INT8 form on the select images",
            "budget_s": self.budget_s,
            "candidates": [c.to_dict() for c in self.candidates],
            "skipped": [r.label for r in self.skipped],
        }


QuantiseBoth = Callable[[Recipe, Path], tuple[Path, Path]]


def score_recipe(
    recipe: Recipe,
    quantise: QuantiseBoth,
    fp32: tuple[dict[str, float], float],
    data: Path,
    folder: Path,
) -> CandidateScore:
    """Both INT8 forms of `recipe`, written in `folder`, scored against `fp32` on `data`."""
    started = time.perf_counter()
    qdq, cpu = quantise(recipe, folder)
    reports = (
        accuracy.compare(fp32, qdq, data, TENSORRT_LABEL),
        accuracy.compare(fp32, cpu, data, CPU_LABEL),
    )
    return CandidateScore(recipe, reports, time.perf_counter() - started)


def search(
    model: Path,
    quantise: QuantiseBoth,
    select_data: Path,
    *,
    budget_s: float,
    candidates: Sequence[Recipe] = CANDIDATES,
    on_candidate: Callable[[int, int, str], None] = lambda _done, _total, _text: None,
) -> SearchReport:
    """Score `candidates` on `select_data` within `budget_s`; `quantise(recipe, folder)` writes
    the (S8S8, U8S8) models of a recipe. `on_candidate(done, total, text)` hears each score."""
    started = time.perf_counter()
    fp32 = accuracy.evaluate_ap(model, select_data)
    scored: list[CandidateScore] = []
    skipped: list[Recipe] = []
    with tempfile.TemporaryDirectory(prefix="heron-search-") as tmp:
        for index, recipe in enumerate(candidates):
            elapsed = time.perf_counter() - started
            longest = max((c.seconds for c in scored), default=0.0)
            if scored and elapsed + longest > budget_s:
                skipped.extend(candidates[index:])
                break
            folder = Path(tmp) / f"candidate{index}"
            folder.mkdir()
            score = score_recipe(recipe, quantise, fp32, select_data, folder)
            scored.append(score)
            drops = ", ".join(f"{SHORT[r.label]} {r.drop:.2f}" for r in score.reports)
            on_candidate(index + 1, len(candidates), f"{recipe.label}: mAP drop {drops}")
    return SearchReport(select_data, tuple(scored), tuple(skipped), budget_s)
