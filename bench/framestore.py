"""Benchmark: frames/s through the frame store, shared-memory ring vs inline JPEG.

    .venv/bin/python bench/framestore.py
    .venv/bin/python bench/framestore.py --seconds 3 --sizes 960x544 1920x1080

For each size, one producer "put" plus one consumer "get" per frame, timed together (what a
frame costs end to end on one host), for:
- shm view: SharedMemoryRing.put (one copy into the slot) + get as a read-only zero-copy view
  from a second, read-only attachment (as another process would hold), then is_current();
- shm copy: the same, the reader taking a private copy (get(copy=True), generation checked
  before and after);
- facade shm: FrameStore.store -> FrameRef -> FrameReader.read(copy=False), protobuf included;
- jpeg qN: encode_jpeg + decode_jpeg (what crossing hosts costs; OpenCV's libjpeg).
Frames are camera-like (a smooth gradient with noise) so JPEG does real work. Prints a table
and writes --out (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from heron.core.framestore import (
    FrameReader,
    FrameStore,
    SharedMemoryRing,
    decode_jpeg,
    encode_jpeg,
    segment_name,
)
from heron.v1.frame_pb2 import FrameRef

REPO = Path(__file__).resolve().parents[1]
SLOTS = 16


def camera_like(width: int, height: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 200, width, dtype=np.float32)
    y = np.linspace(0, 200, height, dtype=np.float32)[:, None]
    base = np.dstack([x + 0 * y, y + 0 * x, (x + y) / 2])
    return np.clip(base + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8)


def rate(op: Callable[[int], None], seconds: float) -> tuple[float, int]:
    """Calls of op per second over about `seconds` (after a short warm-up)."""
    for i in range(3):
        op(i)
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        op(done)
        done += 1
    return done / elapsed, done


def bench_size(width: int, height: int, seconds: float, quality: int) -> list[dict[str, Any]]:
    frames = [camera_like(width, height, seed) for seed in range(4)]
    nbytes = frames[0].nbytes
    ring = SharedMemoryRing.create(segment_name("bench"), SLOTS, nbytes)
    reader_ring = SharedMemoryRing.attach(ring.name)
    store, reader = FrameStore(ring, jpeg_quality=quality), FrameReader()
    jpeg_sizes: list[int] = []

    def shm_view(i: int) -> None:
        slot = ring.put(frames[i % 4])
        view = reader_ring.get(slot)
        if not reader_ring.is_current(slot) or view.shape[0] != height:
            raise RuntimeError("frame overwritten during the benchmark")

    def shm_copy(i: int) -> None:
        reader_ring.get(ring.put(frames[i % 4]), copy=True)

    def facade(i: int) -> None:
        ref = store.store(frames[i % 4], FrameRef(stream_id="bench", frame_number=i))
        reader.read(FrameRef.FromString(ref.SerializeToString()), copy=False)

    def jpeg(i: int) -> None:
        data = encode_jpeg(frames[i % 4], quality)
        if len(jpeg_sizes) < 4:
            jpeg_sizes.append(len(data))
        decode_jpeg(data)

    rows = []
    try:
        modes = [("shm view", shm_view), ("shm copy", shm_copy), ("facade shm", facade),
                 (f"jpeg q{quality}", jpeg)]  # fmt: skip
        for mode, op in modes:
            fps, count = rate(op, seconds)
            rows.append(
                {
                    "size": f"{width}x{height}",
                    "mode": mode,
                    "frames_per_s": round(fps, 1),
                    "frames": count,
                    "raw_mb_per_s": round(fps * nbytes / 1e6, 1),
                    "bytes_per_frame": int(np.mean(jpeg_sizes))
                    if mode.startswith("jpeg")
                    else nbytes,
                }
            )
    finally:
        reader.close()
        reader_ring.close()
        ring.unlink()
        ring.close()
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="frame store: put + get per frame (one host)")
    for column in ("size", "mode", "frames/s", "raw MB/s", "bytes/frame"):
        table.add_column(column, justify="left" if column in ("size", "mode") else "right")
    for r in rows:
        table.add_row(r["size"], r["mode"], f"{r['frames_per_s']:,.0f}",
                      f"{r['raw_mb_per_s']:,.0f}", f"{r['bytes_per_frame']:,}")  # fmt: skip
    Console().print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="per mode and size")
    parser.add_argument("--sizes", nargs="+", default=["960x544", "1920x1080"])
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "framestore.json")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for size in args.sizes:
        width, height = (int(v) for v in size.lower().split("x"))
        rows += bench_size(width, height, args.seconds, args.quality)
    print_table(rows)
    import cv2

    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "framestore",
        "host": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            # Numbers from a loaded machine are lower: keep the load next to them.
            "load_average_1m": round(os.getloadavg()[0], 2),
            "opencv": cv2.__version__,
            "numpy": np.__version__,
        },
        "seconds_per_mode": args.seconds,
        "rows": rows,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
