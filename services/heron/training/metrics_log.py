"""Training metrics: one JSON line per epoch in `results/metrics.jsonl`, and PNG curves.

The curves (`loss.png`, `ap.png`) are drawn with matplotlib when it is installed; the JSON
lines are the record, so curves can be drawn later anywhere with `plot_curves`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.jsonl"


class MetricsLog:
    def __init__(self, results: Path) -> None:
        self.path = results / METRICS_FILE

    def append(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")

    def truncate_after(self, epoch: int) -> None:
        """Drop records of epochs after `epoch` (a resumed run redoes them)."""
        records = [r for r in read_metrics(self.path) if r.get("epoch", 0) <= epoch]
        self.path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))


def read_metrics(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{number}: not a JSON line ({e.msg})") from None
    return records


def plot_curves(metrics: Path, out_dir: Path) -> list[Path]:
    """loss.png (training loss, log scale, and learning rate) and ap.png (per-class AP, mAP).

    Returns the files written; none when matplotlib is missing or there is nothing to plot.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    records = read_metrics(metrics)
    written: list[Path] = []
    train = [r for r in records if "loss" in r]
    if train:
        fig, ax = plt.subplots(figsize=(7, 4))
        epochs = [r["epoch"] for r in train]
        ax.plot(epochs, [r["loss"] for r in train], label="loss")
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss")
        lr_ax = ax.twinx()
        lr_ax.plot(epochs, [r["lr"] for r in train], color="tab:orange", label="learning rate")
        lr_ax.set_ylabel("learning rate")
        fig.legend(loc="upper right")
        fig.tight_layout()
        written.append(_save(fig, out_dir / "loss.png", plt))
    val = [r for r in records if "ap" in r]
    if val:
        fig, ax = plt.subplots(figsize=(7, 4))
        epochs = [r["epoch"] for r in val]
        for name in val[-1]["ap"]:
            ax.plot(epochs, [_nan(r["ap"].get(name)) for r in val], marker="o", label=name)
        ax.plot(epochs, [_nan(r.get("mAP")) for r in val], "k--", marker="s", label="mAP")
        ax.set_ylim(0, 1)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation AP")
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        written.append(_save(fig, out_dir / "ap.png", plt))
    return written


def _nan(value: Any) -> float:
    return math.nan if value is None else float(value)


def _save(fig: Any, path: Path, plt: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
