"""Plot the final validation mAP of repeated training runs, one column per recipe.

    python bench/plot_seeds.py -o seeds.png --reference 0.81=YOLOv8n \
        "recipe A=WORK/a1/results.json,WORK/a2/results.json" "recipe B=..."

Each argument is `label=` and a comma-separated list of the `results.json` files that
bench/train_facemask.py wrote (one run each, same recipe, different `--train-seed`); a bare
number instead of a path is taken as a run's mAP (for runs whose files are gone). The
columns show every run, their mean and ± one standard deviation, so that a difference
between recipes can be read against the spread between seeds.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def run_map(item: str) -> float:
    """One run's mAP: a bench results.json, or a number written out."""
    try:
        return float(item)
    except ValueError:
        pass
    path = Path(item)
    try:
        rows = json.loads(path.read_text())
        return float(rows[0]["mAP"])
    except (OSError, json.JSONDecodeError, LookupError, TypeError, ValueError) as e:
        raise SystemExit(f"{path}: expected bench/train_facemask.py's results.json ({e})") from None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("recipes", nargs="+", help="label=results.json,results.json,...")
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--reference", action="append", default=[], help="mAP=label, a dashed line")
    p.add_argument("--title", default="final validation mAP (IoU 0.5), one point per seed")
    args = p.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    for x, recipe in enumerate(args.recipes):
        label, sep, items = recipe.partition("=")
        if not sep or not items:
            raise SystemExit(f"{recipe!r}: expected label=results.json,...")
        maps = [run_map(item) for item in items.split(",")]
        mean = statistics.mean(maps)
        sd = statistics.stdev(maps) if len(maps) > 1 else 0.0
        ax.scatter([x] * len(maps), maps, alpha=0.7, zorder=3)
        if len(maps) > 1:
            ax.errorbar([x + 0.15], [mean], yerr=[sd], fmt="D", color="black", capsize=4, zorder=4)
        text = f"{mean:.3f} ± {sd:.3f}" if len(maps) > 1 else f"{mean:.3f}"
        ax.annotate(text, (x + 0.2, mean), fontsize=8, va="center")
        name = label.replace("\n", " ")
        spread = f"[{min(maps):.4f}, {max(maps):.4f}]"
        print(f"{name}: n={len(maps)} mean {mean:.4f} sd {sd:.4f} {spread}")
    for ref in args.reference:
        value, _, name = ref.partition("=")
        ax.axhline(float(value), linestyle="--", color="grey")
        ax.annotate(name, (len(args.recipes) - 0.5, float(value)), fontsize=8, va="bottom")
    ax.set_xticks(range(len(args.recipes)))
    ax.set_xticklabels([r.partition("=")[0] for r in args.recipes], fontsize=8)
    ax.set_xlim(-0.5, len(args.recipes) - 0.2)
    ax.set_ylabel("mAP")
    ax.set_title(args.title)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(args.output, dpi=110)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
