"""Draw the chart's Grafana dashboards as PNGs from a real Prometheus, without Grafana.

    .venv/bin/python bench/dashboard_png.py --prometheus http://127.0.0.1:9090 --minutes 5 \\
        --out docs/observability       # (the default --out)

For each charts/heron/dashboards/*.json, the time series panels that `heron run` can fill (not
those whose description starts with "Needs": GPU or operator metrics) are asked of Prometheus's
/api/v1/query_range over the window, with the dashboard's variables replaced as Grafana would
(`--namespace`, `--pipeline`, every stream, `$__rate_interval` as --rate), and drawn one axis
per panel, legends from the panels' legendFormat, into OUT/<dashboard>.png.
tests/e2e/test_observability.py runs it on a live pipeline when HERON_DASHBOARD_PNG names a
folder; docs/observability.md shows the result.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plotting import pyplot_or_none

DASHBOARDS = Path(__file__).resolve().parents[1] / "charts" / "heron" / "dashboards"
UNITS = {"s": "seconds", "fps": "frames / s", "percentunit": "share of time", "percent": "%"}


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str
    targets: list[Target]


def drawable(path: Path) -> list[Panel]:
    """The dashboard's time series panels whose metrics a pipeline without GPU or operator has."""
    found = []
    for p in json.loads(path.read_text())["panels"]:
        if p["type"] != "timeseries" or p.get("description", "").startswith("Needs "):
            continue
        unit = p.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
        targets = [Target(t["expr"], t.get("legendFormat", "")) for t in p["targets"]]
        found.append(Panel(p["title"], unit, targets))
    return found


def resolve(expr: str, values: dict[str, str], rate: str) -> str:
    """What Grafana sends: each `$variable` replaced, `$__rate_interval` by `rate`."""
    expr = expr.replace("$__rate_interval", rate)
    return re.sub(r"\$(\w+)", lambda m: values[m.group(1)], expr)


def legend(template: str, labels: dict[str, str]) -> str:
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template)
    return text or ", ".join(f"{k}={v}" for k, v in labels.items()) or "value"


def query_range(url: str, expr: str, start: float, end: float, step: float) -> list[Any]:
    args = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
    with urllib.request.urlopen(f"{url}/api/v1/query_range?{urllib.parse.urlencode(args)}") as r:
        result: list[Any] = json.load(r)["data"]["result"]
    return result


MAX_LINES = 12  # a legend longer than this hides the axis: the largest series are drawn


def draw(ax: Any, panel: Panel, data: list[tuple[Target, list[Any]]], start: float) -> None:
    """The panel's series on `ax`, seconds since `start` on x. Series that stay at 0 are
    counted, not drawn (a panel of 30 idle topics would be all legend)."""
    lines = []
    for target, series in data:
        for s in series:
            xs = [float(t) - start for t, _ in s["values"]]
            ys = [float(v) for _, v in s["values"]]
            lines.append((max(ys, default=0.0), legend(target.legend, s["metric"]), xs, ys))
    drawn = sorted((line for line in lines if line[0] > 0), key=lambda line: -line[0])
    for _, label, xs, ys in drawn[:MAX_LINES]:
        ax.plot(xs, ys, label=label, linewidth=1.2)
    zero = len(lines) - len(drawn)
    more = len(drawn) - min(len(drawn), MAX_LINES)
    parts = [f"{zero} at 0" if zero else "", f"{more} smaller" if more else ""]
    hidden = ", ".join(p for p in parts if p)
    note = f" (not drawn: {hidden})" if hidden else ""
    ax.set_title(panel.title + note, fontsize=9)
    ax.set_xlabel("seconds since the pipeline started", fontsize=8)
    ax.set_ylabel(UNITS.get(panel.unit, ""), fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(fontsize=6, loc="best")
    else:
        text = f"all {len(lines)} series at 0 over the run" if lines else "no data"
        ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])


def render(
    path: Path, out: Path, url: str, window: tuple[float, float], *, values: dict[str, str],
    rate: str = "1m",
) -> Path | None:  # fmt: skip
    """OUT/<dashboard>.png of `path`'s drawable panels over `window` (unix seconds)."""
    plt = pyplot_or_none(out / f"{path.stem}.png")
    panels = drawable(path)
    if plt is None or not panels:
        return None
    start, end = window
    step = max(1.0, (end - start) / 240)
    cols = 2
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(11, 3.0 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        data = [(t, query_range(url, resolve(t.expr, values, rate), start, end, step))
                for t in panel.targets]  # fmt: skip
        draw(ax, panel, data, start)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(json.loads(path.read_text())["title"], fontsize=11)
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    png = out / f"{path.stem}.png"
    fig.savefig(png, dpi=90)
    plt.close(fig)
    return png


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--prometheus", help="base URL, e.g. http://127.0.0.1:9090")
    p.add_argument("--minutes", type=float, default=5.0, help="the window, ending now")
    p.add_argument("--start", type=float, help="window start (unix seconds; overrides --minutes)")
    p.add_argument("--end", type=float, help="window end (unix seconds; default now)")
    p.add_argument("--namespace", default=".*")
    p.add_argument("--pipeline", default=".*")
    p.add_argument("--rate", default="1m", help="what $__rate_interval becomes")
    p.add_argument("--dashboards", type=Path, default=DASHBOARDS)
    p.add_argument("--out", type=Path, default=Path("docs/observability"))
    args = p.parse_args()
    if args.prometheus is None:  # `make bench` runs every script bare: nothing to draw from
        print("dashboard_png: no --prometheus given, nothing drawn (see --help)")
        return
    end = args.end if args.end is not None else time.time()
    start = args.start if args.start is not None else end - 60 * args.minutes
    values = {"namespace": args.namespace, "pipeline": args.pipeline, "stream": ".*"}
    for path in sorted(args.dashboards.glob("*.json")):
        png = render(path, args.out, args.prometheus, (start, end), values=values, rate=args.rate)
        print(f"{path.name}: {png or 'nothing drawn'}")


if __name__ == "__main__":
    main()
