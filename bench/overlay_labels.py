"""Benchmark: what placing the OSD's labels costs per frame, and how many still overlap.

    PYTHONPATH=services python3 bench/overlay_labels.py [--frames 300] [--repeat 5]

Pure Python (heron.overlay.labels needs nothing else), so it runs on any interpreter. Crowds of
seeded random boxes (faces 30-70 px wide, 1.2 times as tall) on a 1280x720 canvas and on a
640x360 tile, each labelled like `No-Mask 123` at text-size 15 (Hershey COMPLEX: 100x25 px with
its background; `Mask 17`: 72x25). Prints (and writes to --out as JSON), per crowd, the median
and worst time of one frame's placement (each the least of `--repeat` timings) and the label
pairs that overlap: at nvdsosd's place (above the box's top-left, inside its top edge when there
is no room) and where `place_labels` puts them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
from pathlib import Path

from heron.overlay.labels import Box, Place, Size, place_labels

SIZES: tuple[Size, Size] = ((72, 25), (100, 25))  # `Mask 17`, `No-Mask 123` at text-size 15
CROWDS = ((10, 1280, 720), (50, 1280, 720), (50, 640, 360), (100, 640, 360))


def crowd(rng: random.Random, n: int, width: int, height: int) -> tuple[list[Box], list[Size]]:
    boxes: list[Box] = []
    for _ in range(n):
        w = rng.randrange(30, 70)
        h = int(w * 1.2)
        x, y = rng.randrange(0, width - w), rng.randrange(0, height - h)
        boxes.append((x, y, x + w, y + h))
    return boxes, [SIZES[i % 2] for i in range(n)]


def nvdsosd(boxes: list[Box], sizes: list[Size], width: int) -> list[Place]:
    return [
        (max(0, min(x1, width - w)), y1 - h if y1 - h >= 0 else y1)
        for (x1, y1, _, _), (w, h) in zip(boxes, sizes, strict=True)
    ]


def overlapping(places: list[Place], sizes: list[Size]) -> int:
    pairs = 0
    for i, ((x, y), (w, h)) in enumerate(zip(places, sizes, strict=True)):
        for (a, b), (c, d) in zip(places[:i], sizes[:i], strict=True):
            if min(x + w, a + c) > max(x, a) and min(y + h, b + d) > max(y, b):
                pairs += 1
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300, help="frames per crowd")
    parser.add_argument("--repeat", type=int, default=5, help="timings per frame (least kept)")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "overlay_labels.json"
    )
    args = parser.parse_args()
    rng = random.Random(0)
    rows: list[dict[str, float]] = []
    print("labels  canvas     median us  worst us  overlapping pairs: nvdsosd  placed")
    for n, width, height in CROWDS:
        frames = [crowd(rng, n, width, height) for _ in range(args.frames)]
        times, before, after = [], [], []
        for boxes, sizes in frames:
            took = []
            for _ in range(args.repeat):  # the least of a few: other processes' noise out
                start = time.perf_counter()
                places = place_labels(boxes, sizes, width, height)
                took.append(time.perf_counter() - start)
            times.append(min(took))
            before.append(overlapping(nvdsosd(boxes, sizes, width), sizes))
            after.append(overlapping(places, sizes))
        row = {
            "labels": n, "width": width, "height": height,
            "median_us": statistics.median(times) * 1e6, "worst_us": max(times) * 1e6,
            "overlapping_pairs_nvdsosd": statistics.mean(before),
            "overlapping_pairs_placed": statistics.mean(after),
        }  # fmt: skip
        rows.append(row)
        print(
            f"{n:6d}  {width}x{height:<4d}  {row['median_us']:9.0f}  {row['worst_us']:8.0f}  "
            f"{row['overlapping_pairs_nvdsosd']:26.1f}  {row['overlapping_pairs_placed']:6.2f}"
        )
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine, "crowds": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
