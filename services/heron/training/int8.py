"""INT8 for the training Job: `heron calibrate` on the exported model, then the AP of its INT8
models on the validation images, scored exactly as the FP32 model was.

Calibration is the engine's (`heron.engine`), and a service never imports another service
(.importlinter, ../DESIGN.md): the Job runs the engine's public command, `heron calibrate`, as
a child process, which writes `calibration.bin` and both Q/DQ models into RESULTS/int8
(docs/engine.md). Scoring is training's own (`heron evaluate`'s: same images, clustering and
AP), so the FP32 and INT8 numbers differ by the quantisation alone.
"""

from __future__ import annotations

import logging
import random
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heron.training.job import CalibrationStep, TrainingError, score_model

if TYPE_CHECKING:
    from heron.training.dataset import LabelledImage
    from heron.training.validation import ValidationResult

log = logging.getLogger(__name__)
FOLDER = "int8"  # inside the results folder
CACHE_FILE = "calibration.bin"  # heron calibrate's outputs (heron.engine.calibrate)
VARIANTS = {
    "model.int8.qdq.onnx": "TensorRT Q/DQ (S8S8)",
    "model.int8.u8s8.onnx": "ONNX Runtime CPU (U8S8)",
}
_TAIL = 5  # lines of a failed calibration's output in the error


@dataclass(frozen=True)
class Int8Score:
    label: str
    model: Path
    ap: dict[str, float]  # per class, 0..1
    mean_ap: float
    ap_drop: float  # mAP(FP32) - mAP(INT8), 0..1


@dataclass(frozen=True)
class Int8Result:
    cache: Path
    variants: tuple[Int8Score, ...]  # empty without validation images

    @property
    def worst(self) -> Int8Score | None:
        """The variant that loses the most mAP: what the EngineBuild's INT8 gate judges too."""
        return max(self.variants, key=lambda v: v.ap_drop, default=None)

    def to_dict(self, results: Path) -> dict[str, Any]:
        """The worst variant's `ap`, `mAP` and `apDrop` (a TrainingRun's status.int8), and every
        variant; paths relative to `results`."""
        worst = self.worst

        def entry(v: Int8Score) -> dict[str, Any]:
            model = v.model.relative_to(results).as_posix()
            return {"label": v.label, "model": model, "ap": v.ap, "mAP": v.mean_ap,
                    "apDrop": v.ap_drop}  # fmt: skip

        return {
            "ap": worst.ap if worst else None,
            "mAP": worst.mean_ap if worst else None,
            "apDrop": worst.ap_drop if worst else None,
            "variants": [entry(v) for v in self.variants],
        }


def calibrate_and_score(
    onnx: Path,
    results: Path,
    step: CalibrationStep,
    *,
    train_items: list[LabelledImage],
    val_items: list[LabelledImage],
    fp32: ValidationResult | None,
) -> Int8Result:
    """Calibrate `onnx` into RESULTS/int8, then score both INT8 models on `val_items` against
    the FP32 reading `fp32` (no scores without validation images)."""
    output = results / FOLDER
    with tempfile.TemporaryDirectory(prefix="heron-calibration-") as tmp:
        images = step.images or _link_images(train_items, Path(tmp))
        run_calibrate(onnx, images, output, step)
    scores = []
    if fp32 is not None and val_items:
        for name, label in VARIANTS.items():
            scored = score_model(output / name, val_items)
            drop = fp32.mean_ap - scored.mean_ap
            scores.append(Int8Score(label, output / name, scored.ap, scored.mean_ap, drop))
            log.info("%s: mAP %.4f (FP32 %.4f)", label, scored.mean_ap, fp32.mean_ap)
    return Int8Result(output / CACHE_FILE, tuple(scores))


def run_calibrate(onnx: Path, images: Path, output: Path, step: CalibrationStep) -> None:
    """`heron calibrate` in a child process of this interpreter; its output goes to the log,
    a failure is a TrainingError with its last lines."""
    command = [
        sys.executable, "-m", "heron.cli.main", "calibrate",
        "--model", str(onnx), "--images", str(images), "--output", str(output),
        *step.arguments(),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    for line in lines:
        log.info("calibrate: %s", line)
    if done.returncode != 0:
        raise TrainingError(
            f"heron calibrate failed (exit {done.returncode}): " + " | ".join(lines[-_TAIL:])
        )


def _link_images(items: list[LabelledImage], folder: Path) -> Path:
    """The training images as links in `folder`, in a seeded shuffle: heron calibrate takes the
    first images by name, and these names make them a sample of the whole set."""
    if not items:
        raise TrainingError("calibration: no training images to calibrate on")
    order = list(range(len(items)))
    random.Random(0).shuffle(order)
    for rank, index in enumerate(order):
        image = items[index].image.resolve()
        (folder / f"{rank:07d}{image.suffix.lower()}").symlink_to(image)
    return folder
