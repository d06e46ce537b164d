"""Detection metrics with TAO detectnet_v2 semantics: per-class AP (SAMPLE / INTEGRATE) and mAP.

`evaluate(predictions, ground_truth, class_names, config)` → `EvalReport`; `plot_pr_curves`
draws it. Predictions are `heron.core.detections.Detections`, the type the inference service serves,
so the AP measured here is the AP of what is served.
"""

from heron.evaluation.ap.config import APMode, EvaluationBoxConfig, EvaluationConfig
from heron.evaluation.ap.evaluate import evaluate
from heron.evaluation.ap.ground_truth import GroundTruth
from heron.evaluation.ap.plot import plot_pr_curves
from heron.evaluation.ap.report import ClassReport, EvalReport

__all__ = [
    "APMode",
    "ClassReport",
    "EvalReport",
    "EvaluationBoxConfig",
    "EvaluationConfig",
    "GroundTruth",
    "evaluate",
    "plot_pr_curves",
]
