"""Benchmark: tracking quality (py-motmetrics) and cost of every Heron tracker.

    .venv/bin/python bench/tracker.py
    .venv/bin/python bench/tracker.py --seeds 0 1 2 3 --frames 300 --intervals 0 2 4

1. Generated scenes with ground truth (heron.tracker.synthetic: textured boxes that move,
   cross, hide behind each other, enter and leave; a detector that misses, adds noise and false
   positives): MOTA, IDF1, ID switches, false positives and misses summed over --seeds, for
   each tracker and each nvinfer `interval` (the detector runs on one frame in interval+1; the
   tracker carries objects over the rest; every frame is scored). Pixel trackers (KLT,
   correlation) work on frames scaled to --size (tracker-width x tracker-height).
2. The real clip (../shared/data/videos/Face_Mask_Video.mp4) with a trained face-mask detector
   (models/facemask/*.onnx, exported by `heron export` with its settings): it has no ground
   truth, so ID switches are counted without it: a detection that overlaps (IoU >= 0.5) an
   object reported on the previous frame but comes out with another id is one switch. Skipped,
   with the reason, when the clip or the model is absent.

Prints a table and writes --out (JSON). Needs `pip install motmetrics`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from heron.tracker import TrackerKind, TrackerParams
from heron.tracker.evaluation import evaluate
from heron.tracker.factory import TrackerSpec, build_tracker
from heron.tracker.synthetic import SceneSpec, make_scene

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO.parent / "shared" / "data" / "videos" / "Face_Mask_Video.mp4"


def synthetic_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    scenes = [make_scene(SceneSpec(frames=args.frames, seed=s)) for s in args.seeds]
    rows = []
    for interval in args.intervals:
        for kind in TrackerKind:
            spec = TrackerSpec(kind, TrackerParams(), *args.size)
            totals: dict[str, float] = {}
            for scene in scenes:
                tracker = build_tracker(spec)
                score = evaluate(
                    tracker, scene, pixels=spec.uses_pixels, size=args.size, interval=interval
                )
                for key, value in asdict(score).items():
                    totals[key] = totals.get(key, 0) + value
            n = len(scenes)
            rows.append(
                {
                    "data": "synthetic",
                    "tracker": kind.value,
                    "interval": interval,
                    "mota": totals["mota"] / n,
                    "idf1": totals["idf1"] / n,
                    "id_switches": int(totals["id_switches"]),
                    "false_positives": int(totals["false_positives"]),
                    "misses": int(totals["misses"]),
                    "frames": int(totals["frames"]),
                    # tracker.update alone (frame scaling and scoring not included)
                    "ms_per_frame": 1000 * totals["update_seconds"] / totals["frames"],
                }
            )
    return rows


def clip_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    # the exported model, not the INT8 copies the inference service caches beside it
    found = sorted((REPO / "models" / "facemask").glob("*.onnx"))
    models = [p for p in found if ".int8-" not in p.name]
    models.sort(key=lambda p: p.name != "model.onnx")
    model = args.model or (models[0] if models else None)
    reason = ""
    if not args.clip.is_file():
        reason = f"{args.clip} is absent (a fresh clone has no ../shared)"
    elif model is None:
        reason = "no trained model at models/facemask/*.onnx (train and export one first)"
    if reason:
        return [{"data": "Face_Mask_Video.mp4", "skipped": reason}]
    if model is None:  # narrowed for the type checker; reason says so above
        return []
    detections = detect_clip(Path(model), args.clip, args.min_score)
    rows = []
    for kind in TrackerKind:
        spec = TrackerSpec(kind, TrackerParams(), *args.size)
        rows.append(
            {
                "data": "Face_Mask_Video.mp4",
                "model": str(model),
                "min_score": args.min_score,
                "tracker": kind.value,
                **clip_switches(spec, detections, args.clip, args.size),
            }
        )
    return rows


def detect_clip(model: Path, clip: Path, min_score: float) -> list[Any]:
    """The detector's output on every frame, in the clip's pixels, from `min_score` up.

    The model's own settings cluster from its training-time coverage threshold (0.005, which
    keeps every candidate for AP); a deployment draws from nvinfer's pre-cluster-threshold."""
    import av
    import cv2
    from heron.training.predict import decode, load_runner

    runner = load_runner(model)
    w, h = runner.settings.model.input_width, runner.settings.model.input_height
    out = []
    with av.open(str(clip)) as container:
        for frame in container.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24")
            small = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
            batch = small.transpose(2, 0, 1)[None].astype(np.float32) / 255.0
            det = decode(*runner(batch), runner.settings)[0]
            scale = np.array([rgb.shape[1] / w, rgb.shape[0] / h] * 2, dtype=np.float32)
            keep = det.scores >= min_score
            out.append((det.xyxy[keep] * scale, det.scores[keep], det.class_ids[keep]))
    return out


def clip_switches(
    spec: TrackerSpec, detections: list[Any], clip: Path, size: tuple[int, int]
) -> dict[str, Any]:
    import av
    import cv2
    from heron.core.boxes import pairwise_iou
    from heron.core.detections import Detections
    from heron.tracker import Frame

    tracker = build_tracker(spec)
    switches, reported, detected = 0, 0, 0
    ids: set[int] = set()
    previous: list[Any] = []
    seconds = 0.0
    with av.open(str(clip)) as container:
        frames = container.decode(video=0)
        for (boxes, scores, classes), frame in zip(detections, frames, strict=False):
            image = frame.to_ndarray(format="bgr24") if spec.uses_pixels else None
            view = None
            if image is not None:
                scaled = np.asarray(cv2.resize(image, size), np.uint8)
                view = Frame(scaled, size[0] / image.shape[1], size[1] / image.shape[0])
            dets = Detections(boxes, scores, classes)
            detected += len(dets)
            start = time.perf_counter()
            out = tracker.update(dets, view)
            seconds += time.perf_counter() - start
            if previous and out:
                iou = pairwise_iou(
                    np.stack([t.box for t in out]), np.stack([t.box for t in previous]), np.float64
                )
                for i, t in enumerate(out):
                    j = int(iou[i].argmax())
                    if iou[i, j] >= 0.5 and previous[j].track_id != t.track_id:
                        switches += 1
            previous = out
            ids.update(t.track_id for t in out)
            reported += len(out)
    return {
        "id_switches": switches,
        "tracks": len(ids),
        "detections": detected,
        "objects_reported": reported,
        "frames": len(detections),
        "ms_per_frame": 1000 * seconds / max(len(detections), 1),
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Heron trackers (py-motmetrics)")
    for column in (
        "data",
        "tracker",
        "interval",
        "MOTA",
        "IDF1",
        "ID sw.",
        "FP",
        "miss",
        "ms/frame",
    ):
        table.add_column(column, justify="right" if column not in ("data", "tracker") else "left")
    console = Console(width=110)
    for r in rows:
        if "skipped" not in r:
            table.add_row(
                r["data"],
                r["tracker"],
                str(r.get("interval", 0)),
                f"{r['mota']:.3f}" if "mota" in r else "-",
                f"{r['idf1']:.3f}" if "idf1" in r else "-",
                str(r["id_switches"]),
                str(r.get("false_positives", "-")),
                str(r.get("misses", "-")),
                f"{r['ms_per_frame']:.2f}",
            )
    console.print(table)
    for r in rows:
        if "skipped" in r:
            console.print(f"{r['data']}: skipped: {r['skipped']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--intervals", type=int, nargs="+", default=[0, 2])
    parser.add_argument(
        "--size", type=lambda s: tuple(int(v) for v in s.split("x")), default=(320, 192)
    )
    parser.add_argument("--clip", type=Path, default=CLIP)
    parser.add_argument("--model", type=Path, default=None, help="default: models/facemask/*.onnx")
    parser.add_argument(
        "--min-score",
        type=float,
        default=0.5,
        help="real clip: detections from this coverage up (the demo's pre-cluster-threshold)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "tracker.json")
    args = parser.parse_args()
    rows = synthetic_rows(args) + clip_rows(args)
    print_table(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    machine = {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": sys.version}
    scene = asdict(SceneSpec(frames=args.frames))
    args.out.write_text(
        json.dumps(
            {
                "machine": machine,
                "scene": scene,
                "seeds": args.seeds,
                "size": args.size,
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
