"""Benchmark: how much of the face-mask AP the smallest faces cost (CPU, one model).

    PYTHONPATH=services python3 bench/ap_by_size.py [--model models/facemask/model.pt]

Runs the model once on the validation 20 % of the real set (converted and split as
`train_facemask.py` does: 960×544, seed 42), then scores the same detections again with
TAO's `evaluation_box_config` set to a minimum height of 0, 8, 12, ... px for both classes:
ground-truth boxes under it become "don't care" and detections under it are dropped, as TAO's
evaluator does. Row 0 is the figure the training benchmark reports (every box counted, as
YOLO's mAP50 counts them). Prints a table and writes WORK/ap_by_size.json and .png.

The other rows are not a different target: they say where the AP that is missing goes.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MIN_HEIGHTS = (0, 8, 12, 16, 20, 24)
log = logging.getLogger("bench")


def validation_items(source: Path, work: Path, settings: Any) -> list[Any]:
    """The seed-42 validation fold of the real set as the model's labelled images."""
    from heron.evaluation.kitti import KittiDataset
    from heron.training.dataset import from_kitti
    from train_facemask import convert, split

    kitti = work / "kitti"
    convert(source, kitti)
    _, val_paths = split(kitti)
    items, _ = from_kitti(KittiDataset(kitti, images=val_paths), settings)
    return items


def sweep(runner: Any, items: list[Any], min_heights: tuple[int, ...]) -> list[dict[str, Any]]:
    import torch
    from heron.training.dataset import DetectionDataset, ImageCache
    from heron.training.validation import ground_truth, predict_with_runner, score

    settings = runner.settings
    w, h = settings.model.input_width, settings.model.input_height
    cache = ImageCache.build(DetectionDataset(items, w, h), torch.device("cpu"))
    truth = ground_truth(cache)
    predictions = predict_with_runner(runner, cache)
    heights = np.concatenate([t.boxes[:, 3] - t.boxes[:, 1] for t in truth])
    rows = []
    for min_height in min_heights:
        limits = {c: (min_height, 100_000, 0, 100_000) for c in settings.classes}
        evaluation = replace(settings.evaluation, box_limits=limits)
        result = score(predictions, truth, replace(settings, evaluation=evaluation))
        rows.append(
            {
                "min_height": min_height,
                "boxes_ignored": int((heights < min_height).sum()),
                "boxes": int(heights.size),
                "mAP": round(result.mean_ap, 4),
                "ap": {k: round(v, 4) for k, v in result.ap.items()},
            }
        )
    return rows


def plot(rows: list[dict[str, Any]], png: Path) -> None:
    from plotting import pyplot_or_none

    plt = pyplot_or_none(png)
    if plt is None:
        return
    x = [r["min_height"] for r in rows]
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    ax.plot(x, [r["mAP"] for r in rows], "k-o", label="mAP")
    for name in rows[0]["ap"]:
        ax.plot(x, [r["ap"][name] for r in rows], "--o", label=f"{name} AP")
    ax.set_xlabel("boxes under this height (px at 960×544) ignored")
    ax.set_ylabel("AP at IoU 0.5")
    ax.set_xticks(x)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    log.info("wrote %s", png)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", type=Path, default=REPO / "models/facemask/model.pt")
    p.add_argument("--data", type=Path, default=REPO.parent / "shared/data/facemask-kaggle")
    p.add_argument("--work", type=Path, default=Path("/tmp/heron-ap-by-size"))
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if not args.data.is_dir():
        print(f"ap_by_size: {args.data} not found (the real set lives in ../shared); skipped")
        return
    from heron.training.predict import load_runner

    runner = load_runner(args.model, "cpu")
    items = validation_items(args.data, args.work, runner.settings)
    rows = sweep(runner, items, MIN_HEIGHTS)
    print(
        f"{'min height':>10} {'ignored':>8} "
        + " ".join(f"{c:>8}" for c in rows[0]["ap"])
        + "      mAP"
    )
    for r in rows:
        aps = " ".join(f"{v:>8.4f}" for v in r["ap"].values())
        print(
            f"{r['min_height']:>10} {r['boxes_ignored']:>4}/{r['boxes']:<3} {aps} {r['mAP']:>8.4f}"
        )
    args.work.mkdir(parents=True, exist_ok=True)
    out = {"model": str(args.model), "rows": rows}
    (args.work / "ap_by_size.json").write_text(json.dumps(out, indent=2) + "\n")
    plot(rows, args.work / "ap_by_size.png")
    print(f"results: {args.work / 'ap_by_size.json'}")


if __name__ == "__main__":
    main()
