"""Benchmark: prune → retrain sweep of a trained DetectNet_v2 (TAO's pruning table, our data).

    PYTHONPATH=services python3 bench/prune_sweep.py --model WORK/resnet18/model.pt \\
        --kitti WORK/kitti --work /tmp/heron-prune --epochs 40

WORK is `bench/train_facemask.py`'s folder: its trained model and its KITTI copy of the
face-mask set; the validation images are that script's 20 % split (seed 42). For every
threshold (default 0.1 0.15 0.2 0.25 0.3 0.35 0.45) the script

1. prunes the model with TAO's defaults otherwise (`heron prune`: max normaliser, union,
   granularity 8, min 16 filters) into WORK_PRUNE/pth_<t>/pruned.pt;
2. retrains it for --epochs with the model's own recipe (TAO's retrain spec with
   `load_graph: true`), into WORK_PRUNE/pth_<t>/;
3. measures the retrained model: per-class AP and mAP on the validation split, parameters
   and FLOPs at 960×544, and CPU latency in ONNX Runtime (960×544, batch 1, --threads).

The unpruned model is measured as the first row. Prints a table, writes WORK_PRUNE/results.json
and the Markdown table (--doc, default docs/benchmarks/pruning.md). Needs torch and
torch-pruning for steps 1-2; step 3 needs the evaluation extras (pydantic, scikit-learn) and
onnx + onnxruntime. Where they are missing, --measure-only later (e.g. in the repo's .venv,
which also gives the CI machine's CPU latency) finishes the table from the saved models.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import shutil
import statistics
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from heron.evaluation.kitti import KittiDataset
from heron.training import checkpoint as ckpt
from heron.training.dataset import from_kitti
from heron.training.model import BBOX_NAME, COV_NAME, INPUT_NAME, DetectNetV2
from heron.training.prune.layout import load_pruned
from heron.training.prune.pruner import PruneOptions, measure, prune_checkpoint
from heron.training.settings import TrainingSettings
from heron.training.train import TrainOptions, train

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_facemask import split  # the same validation split as the trained model's

REPO = Path(__file__).resolve().parents[1]
THRESHOLDS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.45)
LATENCY_SIZE = (960, 544)
log = logging.getLogger("bench")


def retrain(
    pruned: Path,
    settings: TrainingSettings,
    data: tuple[list[Any], list[Any]],
    out: Path,
    options: TrainOptions,
) -> Path:
    """`heron train` on a retrain spec (`pretrained_model_file: pruned`, `load_graph: true`)."""
    shutil.rmtree(out / "checkpoints", ignore_errors=True)  # a fresh run, never a resume
    (out / "metrics.jsonl").unlink(missing_ok=True)
    train_items, val_items = data
    model = replace(settings.model, pretrained_model_file=str(pruned), load_graph=True)
    return train(replace(settings, model=model), train_items, val_items, out, options).final_model


def prune_and_retrain(args: argparse.Namespace, threshold: float, data: Any) -> dict[str, Any]:
    out = args.work / f"pth_{threshold:g}"
    pruned = out / "pruned.pt"
    report = prune_checkpoint(args.model, pruned, PruneOptions(threshold=threshold))
    source = ckpt.load(args.model, with_training_state=False).settings
    optim = replace(
        source.optim,
        num_epochs=args.epochs,
        checkpoint_interval=max(1, args.epochs // 2),
        **({"max_learning_rate": args.lr} if args.lr else {}),
    )
    options = TrainOptions(device=args.device, compile=args.compile, progress=False, validate=False)
    started = time.perf_counter()
    final = retrain(pruned, replace(source, optim=optim), data, out, options)
    return {
        "pth": threshold,
        "pruned_model": str(pruned),
        "final_model": str(final),
        "pruned_parameters": report.after.parameters,
        "retrain_epochs": args.epochs,
        "retrain_s": round(time.perf_counter() - started, 1),
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
    }


def evaluate(
    model: DetectNetV2, settings: TrainingSettings, val_paths: list[Path], kitti: Path
) -> dict[str, Any]:
    """Per-class AP and mAP on the validation images (TAO semantics, network-input pixels)."""
    from heron.training.dataset import DetectionDataset, ImageCache
    from heron.training.validation import ground_truth, predict_cache, score

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    items, _ = from_kitti(KittiDataset(kitti, images=val_paths), settings)
    w, h = settings.model.input_width, settings.model.input_height
    cache = ImageCache.build(DetectionDataset(items, w, h), device)
    model.to(device)
    result = score(
        predict_cache(model, cache=cache, settings=settings, device=device),
        ground_truth(cache),
        settings,
    )
    model.cpu()
    return {"ap": result.ap, "mAP": result.mean_ap, "val_images": len(items)}


def onnx_latency_ms(model: DetectNetV2, path: Path, threads: int, runs: int) -> float:
    """Median ONNX Runtime CPU latency at 960×544, batch 1 (fp32)."""
    import numpy as np
    import onnxruntime as ort

    w, h = LATENCY_SIZE
    x = torch.rand(1, 3, h, w)
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on forward()'s fixed flag
        torch.onnx.export(
            model,
            (x,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[COV_NAME, BBOX_NAME],
            opset_version=17,
            dynamo=False,
        )
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    feed = {INPUT_NAME: np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32)}
    for _ in range(3):
        session.run(None, feed)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def measure_row(
    row: dict[str, Any], args: argparse.Namespace, val_paths: list[Path]
) -> dict[str, Any]:
    model, settings = load_pruned(row["final_model"])
    cost = measure(model, *LATENCY_SIZE)
    row = {**row, "parameters": cost.parameters, "gflops": round(cost.flops / 1e9, 3)}
    row.update(evaluate(model, settings, val_paths, args.kitti))
    onnx_path = Path(row["final_model"]).with_suffix(".onnx")
    row["cpu_latency_ms"] = round(onnx_latency_ms(model, onnx_path, args.threads, args.runs), 1)
    row["classes"] = list(settings.classes)
    return row


def table(rows: list[dict[str, Any]]) -> list[str]:
    classes = rows[0].get("classes") or []
    head = ["pth", *(f"{c} AP" for c in classes), "mAP", "parameters", "GFLOPs", "CPU ms"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        ap = r.get("ap") or {}
        cells = [
            "unpruned" if r["pth"] == 0 else f"{r['pth']:g}",
            *(_pct(ap.get(c)) for c in classes),
            _pct(r.get("mAP")),
            f"{r['parameters']:,}" if "parameters" in r else "-",
            f"{r['gflops']:.2f}" if "gflops" in r else "-",
            f"{r['cpu_latency_ms']:.1f}" if "cpu_latency_ms" in r else "-",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _pct(value: Any) -> str:
    return f"{100 * value:.2f}" if isinstance(value, float) else "-"


def write_doc(path: Path, rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    trained = rows[1]["device"] if len(rows) > 1 else "-"
    text = [
        "# Pruning sweep: DetectNet_v2 on the face-mask set",
        "",
        f"Written by `bench/prune_sweep.py` from `{args.model}`: each threshold pruned with "
        "TAO's defaults (max normaliser, union, granularity 8, min 16 filters), retrained "
        f"{args.epochs} epochs on {trained}, scored on the validation split (AP in %, IoU 0.5, "
        f"TAO INTEGRATE). Parameters and FLOPs (2 × MACs) at 960×544; CPU latency: ONNX "
        f"Runtime fp32, 960×544, batch 1, {args.threads} threads, median of {args.runs}, on "
        f"{platform.processor() or platform.machine()} ({platform.node()}).",
        "",
        *table(rows),
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(text))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", type=Path, required=True, help="trained checkpoint (.pt)")
    p.add_argument("--kitti", type=Path, required=True, help="train_facemask.py's WORK/kitti")
    p.add_argument("--work", type=Path, default=Path("/tmp/heron-prune"))
    p.add_argument("--thresholds", default=",".join(f"{t:g}" for t in THRESHOLDS))
    p.add_argument("--epochs", type=int, default=40, help="retraining epochs per threshold")
    p.add_argument("--lr", type=float, default=None, help="max learning rate (default: model's)")
    p.add_argument("--device", default=None)
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=False)
    p.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    p.add_argument("--runs", type=int, default=20, help="timed ONNX Runtime runs")
    p.add_argument("--limit", type=int, default=None, help="smoke run: first N training images")
    p.add_argument("--measure-only", action="store_true", help="score saved retrained models")
    p.add_argument(
        "--latency-only",
        action="store_true",
        help="time the measured models' ONNX files again (a quiet machine), keeping their AP",
    )
    p.add_argument("--doc", type=Path, default=REPO / "docs" / "benchmarks" / "pruning.md")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args.work.mkdir(parents=True, exist_ok=True)
    train_paths, val_paths = split(args.kitti)
    if args.limit:
        train_paths, val_paths = train_paths[: args.limit], val_paths[: max(1, args.limit // 4)]
    thresholds = [float(t) for t in args.thresholds.split(",")]
    results = args.work / "results.json"
    if args.latency_only:
        rows = json.loads(results.read_text())
        for row in rows:
            model, _ = load_pruned(row["final_model"])
            onnx_path = Path(row["final_model"]).with_suffix(".onnx")
            row["cpu_latency_ms"] = round(
                onnx_latency_ms(model, onnx_path, args.threads, args.runs), 1
            )
        finish(rows, results, args)
        return
    if args.measure_only:
        rows = [r for r in json.loads(results.read_text()) if r["pth"] > 0]
    else:
        settings = ckpt.load(args.model, with_training_state=False).settings
        data = tuple(
            from_kitti(KittiDataset(args.kitti, images=paths), settings)[0]
            for paths in (train_paths, val_paths)
        )
        rows = [prune_and_retrain(args, t, data) for t in thresholds]
    rows.insert(0, {"pth": 0.0, "final_model": str(args.model), "device": "-"})
    results.write_text(json.dumps(rows, indent=2) + "\n")
    try:
        rows = [measure_row(r, args, val_paths) for r in rows]
    except ImportError as e:
        log.warning("cannot measure here (%s); run again with --measure-only where it can", e)
        return
    finish(rows, results, args)


def finish(rows: list[dict[str, Any]], results: Path, args: argparse.Namespace) -> None:
    results.write_text(json.dumps(rows, indent=2) + "\n")
    write_doc(args.doc, rows, args)
    print("\n".join(table(rows)))
    print(f"results: {results}; table: {args.doc}")


if __name__ == "__main__":
    main()
