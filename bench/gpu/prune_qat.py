"""GPU half of issue 18's chain: retrain pruned models, then fine-tune each with QAT.

    PYTHONPATH=services python3 bench/gpu/prune_qat.py --data FACEMASK_VOC --work WORK \\
        --pruned 0.5=IN/p0.5.pt --pruned 0.6=IN/p0.6.pt --unpruned models/facemask/model.pt

Pruning itself runs on the CPU beforehand (`heron prune`, TAO's defaults), so this machine
needs torch and torchvision only. For every pruned checkpoint, in parallel processes on the one
GPU: retrain it with the committed model's own recipe (TAO's retrain spec: `load_graph: true`,
the same epochs, schedule, mosaics and EMA), then fine-tune the retrained model with QAT
(`training_config.enable_qat`: BatchNorms folded, int8 fake quantisation, fp32, no mosaics, a
tenth of the learning rate). The unpruned model gets the QAT fine-tune too, for the PTQ-vs-QAT
comparison on the same weights. Nothing is scored here: the images that choose (select) and
the ones reported (gate) are scored on the CPU afterwards (`bench/int8_chain.py`), so no
choice is made on this machine. Writes WORK/<name>/{retrained,qat}.pt and WORK/results.json
with each stage's GPU wall time.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

BENCH = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BENCH))
log = logging.getLogger("bench")

QAT_EPOCHS = 20
QAT_LR_FACTOR = 0.1  # of the recipe's peak learning rate


def _items(kitti: Path, settings: Any) -> tuple[list[Any], list[Any]]:
    from heron.evaluation.kitti import KittiDataset
    from heron.training.dataset import from_kitti
    from train_facemask import split  # the committed model's 80/20 split, seed 42

    train_paths, _ = split(kitti)
    items, _ = from_kitti(KittiDataset(kitti, images=train_paths), settings)
    return items, []


def _train(
    settings: Any, start: Path, out: Path, items: list[Any], max_steps: int | None
) -> tuple[Path, float]:
    from heron.training.train import TrainOptions, train

    model = replace(settings.model, pretrained_model_file=str(start), load_graph=True)
    options = TrainOptions(
        progress=False,
        validate=False,
        resume=False,
        cudnn_benchmark=False,
        max_steps_per_epoch=max_steps,
    )
    started = time.perf_counter()
    result = train(replace(settings, model=model), items, [], out, options)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return result.final_model, time.perf_counter() - started


def run_one(name: str, start: Path, args: argparse.Namespace, retrain: bool) -> dict[str, Any]:
    """One model's chain in this process: [retrain →] QAT fine-tune."""
    from heron.training import checkpoint as ckpt

    kitti, work, steps = args.work / "kitti", args.work, args.max_steps
    settings = ckpt.load(start, with_training_state=False).settings
    if args.epochs:
        settings = replace(settings, optim=replace(settings.optim, num_epochs=args.epochs))
    items, _ = _items(kitti, settings)
    out = work / name
    record: dict[str, Any] = {"name": name, "start": str(start), "train_images": len(items)}
    if retrain:
        final, seconds = _train(settings, start, out / "retrain", items, steps)
        record.update(retrained=str(final), retrain_s=round(seconds, 1))
        start = final
    optim = replace(
        settings.optim,
        num_epochs=args.qat_epochs,
        max_learning_rate=settings.optim.max_learning_rate * QAT_LR_FACTOR,
        checkpoint_interval=args.qat_epochs,
        enable_qat=True,
        **({"batch_size": args.qat_batch} if args.qat_batch else {}),
    )
    augment = replace(settings.augment, mosaic_probability=0.0)
    qat_settings = replace(settings, optim=optim, augment=augment)
    final, seconds = _train(qat_settings, start, out / "qat", items, steps)
    record.update(qat=str(final), qat_s=round(seconds, 1), qat_epochs=args.qat_epochs)
    record["device"] = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    (out / "record.json").write_text(json.dumps(record, indent=1))
    return record


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="the VOC face-mask folder")
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--pruned", action="append", default=[], help="NAME=CHECKPOINT (pruned)")
    p.add_argument("--unpruned", type=Path, help="a float model to QAT-tune without retraining")
    p.add_argument("--epochs", type=int, help="retrain epochs (default: the model's own)")
    p.add_argument("--qat-epochs", type=int, default=QAT_EPOCHS)
    p.add_argument("--qat-batch", type=int, help="QAT batch size (default: the model's own)")
    p.add_argument("--max-steps", type=int, help="steps per epoch at most (smoke runs)")
    p.add_argument("--one", nargs=3, metavar=("NAME", "START", "RETRAIN"), help=argparse.SUPPRESS)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    kitti = args.work / "kitti"
    if args.one:
        name, start, retrain = args.one
        run_one(name, Path(start), args, retrain == "1")
        return
    from train_facemask import convert

    started = time.perf_counter()
    convert(args.data, kitti)
    jobs = [(f"pth_{n}", Path(c), "1") for n, c in (s.split("=", 1) for s in args.pruned)]
    if args.unpruned:
        jobs.append(("unpruned", args.unpruned, "0"))
    children = []
    for name, start, retrain in jobs:
        log_file = (args.work / f"{name}.log").open("w")
        command = [sys.executable, __file__, "--data", str(args.data), "--work", str(args.work)]
        command += ["--qat-epochs", str(args.qat_epochs), "--one", name, str(start), retrain]
        command += ["--epochs", str(args.epochs)] if args.epochs else []
        command += ["--qat-batch", str(args.qat_batch)] if args.qat_batch else []
        command += ["--max-steps", str(args.max_steps)] if args.max_steps else []
        children.append(
            (name, subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT))
        )
    codes = {name: child.wait() for name, child in children}
    records = []
    for name, _, _ in jobs:
        path = args.work / name / "record.json"
        records.append(json.loads(path.read_text()) if path.is_file() else {"name": name})
    summary = {
        "exit_codes": codes,
        "wall_s": round(time.perf_counter() - started, 1),
        "runs": records,
    }
    (args.work / "results.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
