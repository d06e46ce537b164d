"""DetectNet_v2 training, and its public entry point: the training Job.

Other parts use training through these names only (`.importlinter`'s contract "heron run and
the heron command use a service only through its public entry point" checks it):

- `run_job(JobRequest) -> JobResult`: what `python -m heron.training` (the Kubernetes Job)
  runs: train, (prune and retrain: `PruneStep`,) score on the validation images, export ONNX,
  (calibrate INT8 and score it: `CalibrationStep`,) all into the request's results folder.
  Fields of `JobRequest` beyond spec, results and `TrainOptions` cut a run down (VOC data with
  a hold-out, input size, epochs or a time budget): the demo's CPU run.
- `JobRequest.settings()`: the `TrainingSettings` such a Job trains with.
- `TrainingError`: every failure a user can fix, naming the file or field.

Only light modules load here (no torch), so importing this stays fast for the CLI.
"""

from heron.training.job import (
    STEPS,
    CalibrationStep,
    JobRequest,
    JobResult,
    PruneStep,
    Step,
    TrainingError,
    VocData,
    run_job,
)
from heron.training.options import TrainOptions
from heron.training.settings import TrainingSettings

__all__ = [
    "STEPS",
    "CalibrationStep",
    "JobRequest",
    "JobResult",
    "PruneStep",
    "Step",
    "TrainOptions",
    "TrainingError",
    "TrainingSettings",
    "VocData",
    "run_job",
]
