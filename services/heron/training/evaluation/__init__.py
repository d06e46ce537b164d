"""Detection metrics with TAO detectnet_v2 semantics: per-class AP (SAMPLE / INTEGRATE) and mAP.

`evaluate(predictions, ground_truth, class_names, config)` → `EvalReport`; `plot_pr_curves`
draws it. Predictions are `heron.postprocess.Detections`, the type the inference service serves,
so the AP measured here is the AP of what is served.
"""

from heron.training.evaluation.config import APMode, EvaluationBoxConfig, EvaluationConfig
from heron.training.evaluation.evaluate import evaluate
from heron.training.evaluation.ground_truth import GroundTruth
from heron.training.evaluation.plot import plot_pr_curves
from heron.training.evaluation.report import ClassReport, EvalReport

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
