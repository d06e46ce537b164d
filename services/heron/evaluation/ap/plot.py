"""PR curves of an `EvalReport` as a PNG (matplotlib's Agg canvas, no pyplot global state)."""

from __future__ import annotations

from pathlib import Path

from heron.evaluation.ap.report import EvalReport


def plot_pr_curves(report: EvalReport, path_png: str | Path) -> Path:
    """One precision/recall curve per class, AP in the legend; returns the written path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # heavy: loaded on first use
    from matplotlib.figure import Figure

    path = Path(path_png)
    figure = Figure(figsize=(6.4, 4.8), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for item in report.classes:
        recall = [0.0, *item.recall]
        precision = [item.precision[0] if item.precision else 0.0, *item.precision]
        label = f"{item.name}: AP {item.average_precision:.3f} ({item.num_ground_truth} boxes)"
        axes.plot(recall, precision, drawstyle="steps-post", label=label)
    mode = report.config.average_precision_mode.value
    axes.set_title(f"mAP {report.mean_average_precision:.3f} ({mode}, {report.num_images} images)")
    axes.set_xlabel("recall")
    axes.set_ylabel("precision")
    axes.set_xlim(0.0, 1.0)
    axes.set_ylim(0.0, 1.05)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="lower left")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path
