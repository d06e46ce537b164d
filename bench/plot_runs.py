"""Plot validation mAP against epoch for several training runs in one PNG.

    python bench/plot_runs.py -o runs.png "label=WORK/run/metrics.jsonl" ...

Each argument is `label=path` of a `metrics.jsonl` that `heron train` (or
bench/train_facemask.py) wrote; the validated epochs (records with `mAP`) are drawn.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def validated(path: Path) -> tuple[list[int], list[float]]:
    epochs, maps = [], []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise SystemExit(f"{path}:{n}: not a JSON line ({e.msg})") from None
        if "mAP" in record:
            epochs.append(int(record["epoch"]))
            maps.append(float(record["mAP"]))
    return epochs, maps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("runs", nargs="+", help="label=path/to/metrics.jsonl")
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--title", default="validation mAP (IoU 0.5)")
    args = p.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for run in args.runs:
        label, sep, path = run.partition("=")
        if not sep:
            raise SystemExit(f"{run!r}: expected label=path/to/metrics.jsonl")
        epochs, maps = validated(Path(path))
        ax.plot(epochs, maps, marker="o", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("mAP")
    ax.set_title(args.title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.output, dpi=110)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
