"""Benchmark: training images/s of the committed face-mask recipe on 1, 2, 4 ... GPUs (DDP).

    PYTHONPATH=services python3 bench/train_throughput.py --work /tmp/heron-throughput --gpus 1,2,4

1. converts the VOC set to KITTI at 960×544 and splits it 80/20 with seed 42, as
   `train_facemask.py` does (553 training images);
2. writes the committed spec (models/facemask/) with that data, `--epochs` epochs,
   `batch_size_per_gpu: --batch`, mosaics in every epoch and no validation;
3. per GPU count N, runs `torchrun --standalone --nproc_per_node=N` on this script's worker
   mode, which calls the training job's `run_training` with cuDNN autotuning off (as
   `heron train --no-cudnn-benchmark`);
4. reads each run's metrics.jsonl and prints epoch 1, the median of the later epochs and the
   training images/s (every rank's images, the later epochs), with the speed-up over one GPU;
   writes WORK/throughput.json and, where matplotlib imports, WORK/throughput.png.

Counts above the GPUs present are skipped and said so. The global batch is N × `--batch`: this
measures throughput, not the accuracy of that batch (docs/benchmarks/training.md has both).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
from pathlib import Path
from typing import Any

import torch
from google.protobuf import text_format

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "models" / "facemask" / "detectnet_v2_train_mobilenet_v2_facemask.txt"
log = logging.getLogger("bench")


def prepare_data(source: Path, work: Path) -> tuple[Path, Path]:
    """KITTI at 960×544 and the seed-42 80/20 split, as train_facemask.py makes them."""
    from heron.training.data.split import SplitSettings, split_dataset, write_partitions
    from train_facemask import SEED, VAL_PERCENT, convert

    kitti, split = work / "kitti", work / "split"
    convert(source, kitti)
    settings = SplitSettings(root=kitti, val_split=VAL_PERCENT, seed=SEED)
    write_partitions(split_dataset(settings), split)
    return kitti, split


def write_spec(kitti: Path, split: Path, epochs: int, batch: int, out: Path) -> Path:
    """The committed spec with this data and run length, mosaics throughout, no validation."""
    from heron.core.config.tao import load_experiment_spec

    spec: Any = load_experiment_spec(SPEC).message
    source = spec.dataset_config.data_sources[0]
    source.tfrecords_path = str(split / "*")
    source.image_directory_path = str(kitti)
    # train_facemask's converter writes the network's class names (Mask, No-Mask) as labels,
    # so each network class maps to itself.
    mapping = spec.dataset_config.target_class_mapping
    classes = set(mapping.values())
    mapping.clear()
    for name in classes:
        mapping[name] = name
    spec.training_config.num_epochs = epochs
    spec.training_config.batch_size_per_gpu = batch
    spec.augmentation_config.spatial_augmentation.mosaic_off_last_epochs = 0
    spec.evaluation_config.first_validation_epoch = epochs + 1
    spec.training_config.checkpoint_interval = epochs
    out.write_text(text_format.MessageToString(spec))
    return out


def worker(spec: Path, results: Path) -> None:
    """One rank of a run (torchrun starts N of these)."""
    from heron.training.job import run_training
    from heron.training.train import TrainOptions

    options = TrainOptions(progress=False, cudnn_benchmark=False, validate=False)
    run_training(spec, results, options)


def summarise(gpus: int, results: Path) -> dict[str, Any]:
    from heron.training.metrics_log import read_metrics

    epochs = [r for r in read_metrics(results / "metrics.jsonl") if "epoch_s" in r]
    later = epochs[1:]
    return {
        "gpus": gpus,
        "epochs": len(epochs),
        "epoch1_s": epochs[0]["epoch_s"],
        "median_epoch_s": statistics.median(r["epoch_s"] for r in later),
        "images_per_s": round(statistics.median(r["images_per_s"] for r in later), 1),
    }


def plot(rows: list[dict[str, Any]], png: Path) -> None:
    from plotting import pyplot_or_none

    plt = pyplot_or_none(png)
    if plt is None:
        return
    gpus = [r["gpus"] for r in rows]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.bar(gpus, [r["images_per_s"] for r in rows], width=0.6, label="measured")
    per_gpu = rows[0]["images_per_s"] / rows[0]["gpus"]
    ax.plot(gpus, [per_gpu * g for g in gpus], "k--", marker="o", label="linear scaling")
    ax.axhline(1500, color="tab:red", lw=1, label="target 1,500")
    ax.set_xticks(gpus)
    ax.set_xlabel("GPUs (torchrun DDP)")
    ax.set_ylabel("training images/s at 960×544")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    log.info("wrote %s", png)


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'GPUs':>4} {'epoch 1 s':>9} {'later epoch s':>13} {'images/s':>9} {'speed-up':>8}")
    base = rows[0]["images_per_s"] / rows[0]["gpus"]
    for r in rows:
        speedup = r["images_per_s"] / base
        print(
            f"{r['gpus']:>4} {r['epoch1_s']:>9.2f} {r['median_epoch_s']:>13.3f} "
            f"{r['images_per_s']:>9.1f} {speedup:>7.2f}x"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--work", type=Path, default=Path("/tmp/heron-throughput"))
    p.add_argument("--data", type=Path, default=REPO.parent / "shared/data/facemask-kaggle")
    p.add_argument("--gpus", default="1,2,4", help="GPU counts to run, comma-separated")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch", type=int, default=32, help="batch_size_per_gpu")
    p.add_argument("--plot-only", type=Path, help="draw the PNG of a throughput.json again")
    p.add_argument(
        "--worker", nargs=2, type=Path, metavar=("SPEC", "RESULTS"), help=argparse.SUPPRESS
    )
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.worker:
        worker(*args.worker)
        return
    if args.plot_only:
        plot(json.loads(args.plot_only.read_text())["runs"], args.plot_only.with_suffix(".png"))
        return
    present = torch.cuda.device_count()
    if not present:
        print("train_throughput: no GPU here; skipped")
        return
    if not args.data.is_dir():
        print(f"train_throughput: {args.data} not found (the real set lives in ../shared)")
        return
    # The ranks import heron from services/ and run this file's worker mode.
    paths = [os.environ.get("PYTHONPATH", ""), str(REPO / "services"), str(REPO / "bench")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    kitti, split = prepare_data(args.data, args.work)
    spec = write_spec(kitti, split, args.epochs, args.batch, args.work / "spec.txt")
    rows = []
    for gpus in (int(g) for g in args.gpus.split(",")):
        if gpus > present:
            print(f"train_throughput: {gpus} GPUs asked, {present} present; skipped")
            continue
        results = args.work / f"gpus{gpus}"
        shutil.rmtree(results, ignore_errors=True)  # time a fresh run, never a resume
        command = ["torchrun", "--standalone", f"--nproc_per_node={gpus}", __file__]
        subprocess.run([*command, "--worker", str(spec), str(results)], check=True, env=env)
        rows.append({**summarise(gpus, results), "device": torch.cuda.get_device_name(0)})
    if not rows:
        return
    print_table(rows)
    out = {"epochs": args.epochs, "batch_size_per_gpu": args.batch, "runs": rows}
    (args.work / "throughput.json").write_text(json.dumps(out, indent=2) + "\n")
    plot(rows, args.work / "throughput.png")
    print(f"results: {args.work / 'throughput.json'}")


if __name__ == "__main__":
    main()
