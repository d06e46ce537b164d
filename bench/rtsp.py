"""Benchmark: heron.overlay.sinks.RtspServer push rate, viewers' frame rate, glass-to-glass latency.

    .venv/bin/python bench/rtsp.py                 # 960×544 and 1080p, 0/1/2 viewers
    .venv/bin/python bench/rtsp.py --seconds 8 --sizes 1920x1080

For each size and viewer count (viewers are PyAV clients in processes of their own, as real
ones would be):
- latency (with a viewer): push() paced at --fps for --seconds; every frame carries its number
  in pixels (heron.overlay.sinks.stamp), the viewer reads it back after decoding: latency =
  decode done − push() called, on one host's monotonic clock (loopback, RTSP over TCP).
- throughput: then push() as fast as the caller can for --seconds. `push fps` is what the
  caller gets; `encoded fps` the frames x264 put out (the rest were dropped by the leaky queue,
  by design, rather than blocking push); `viewer fps` what each client decoded meanwhile.
Prints a table and writes --out (JSON).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from heron.overlay.sinks import RtspServer, RtspSettings
from heron.overlay.sinks.gst import load_gstreamer
from heron.overlay.sinks.stamp import draw_stamp, read_stamp

REPO = Path(__file__).resolve().parents[1]
PORT = 18554  # not 8554: a demo may be serving there
# NOTES.md: how the ingest service opens RTSP with PyAV (fast open, low delay).
CLIENT_OPTIONS = {
    "rtsp_transport": "tcp",
    "fflags": "nobuffer",
    "flags": "low_delay",
    "analyzeduration": "0",
    "probesize": "32",
}
Frame = npt.NDArray[np.uint8]


def test_frames(width: int, height: int, count: int = 16) -> list[Frame]:
    """Camera-like frames: a textured gradient panning 8 px a frame (fixed seed)."""
    rng = np.random.default_rng(0)
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]
    base = (0.5 * x + 0.3 * y + rng.normal(0, 12, (height, width, 3))).clip(0, 255)
    base = base.astype(np.uint8)
    return [np.ascontiguousarray(np.roll(base, 8 * i, axis=1)) for i in range(count)]


def viewer(url: str, stop: Any, ready: Any, results: Any) -> None:
    """In a process of its own: decode until told to stop; report (frame number, time) pairs."""
    import av

    records: list[tuple[int, float]] = []
    container = av.open(url, options=CLIENT_OPTIONS, timeout=(10.0, 5.0))
    try:
        for frame in container.decode(video=0):
            now = time.monotonic()
            gray = np.asarray(frame.to_ndarray(format="gray"), dtype=np.uint8)
            records.append((read_stamp(gray[..., None]), now))
            ready.set()
            if stop.is_set():
                break
    finally:
        container.close()
        results.put(records)


class Viewers:
    """N viewer processes on one URL, each decoding from the moment it is ready."""

    def __init__(self, url: str, count: int) -> None:
        ctx = mp.get_context("spawn")  # never fork a process that runs GStreamer threads
        self.stop, self.results = ctx.Event(), ctx.Queue()
        self.ready = [ctx.Event() for _ in range(count)]
        self.procs = [
            ctx.Process(target=viewer, args=(url, self.stop, r, self.results), daemon=True)
            for r in self.ready
        ]

    def start(self, keep_pushing: Any) -> None:
        for proc in self.procs:
            proc.start()
        deadline = time.monotonic() + 30
        while not all(r.is_set() for r in self.ready):  # the media starts on the first frames
            keep_pushing()
            if time.monotonic() > deadline:
                raise RuntimeError("viewers did not start decoding within 30 s")

    def finish(self, keep_pushing: Any) -> list[list[tuple[int, float]]]:
        self.stop.set()
        out = []
        for _ in self.procs:
            while True:  # viewers stop on their next frame: keep frames coming
                keep_pushing()
                try:
                    out.append(self.results.get(timeout=0.02))
                    break
                except Exception:  # queue.Empty, from the multiprocessing module
                    continue
        for proc in self.procs:
            proc.join(10)
        return out


def measure(
    width: int, height: int, *, n_viewers: int, seconds: float, fps: float, threads: int
) -> dict[str, Any]:
    frames = test_frames(width, height)
    settings = RtspSettings(
        port=PORT,
        width=width,
        height=height,
        fps=fps,
        key_int_max=round(fps),
        encoder_threads=threads,
    )
    server = RtspServer.from_settings(settings)
    number = 0

    def push(paced_until: float | None = None) -> float:
        nonlocal number
        frame = frames[number % len(frames)]
        draw_stamp(frame, number)
        sent = time.monotonic()
        server.push(frame)
        number += 1
        if paced_until is not None:
            time.sleep(max(0.0, paced_until - time.monotonic()))
        return sent

    def paced() -> None:
        push(time.monotonic() + 1 / fps)

    result: dict[str, Any] = {
        "width": width,
        "height": height,
        "viewers": n_viewers,
        "encoder_threads": threads,
    }
    with server:
        views = Viewers(server.url, n_viewers)
        views.start(paced)
        # Latency first, paced at the stream's rate as the overlay pushes: a flat-out phase
        # before it would leave a backlog in the socket buffers that it would measure too.
        sent: dict[int, float] = {}
        start, first = time.monotonic(), number
        while time.monotonic() - start < seconds:
            stamp = number % (1 << 16)
            sent[stamp] = push(start + (number - first + 1) / fps)
        # Throughput: as fast as the caller can push.
        first, encoded0 = number, server.frames_encoded
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            push()
        t1 = time.monotonic()
        result["push_fps"] = (number - first) / (t1 - t0)
        result["encoded_fps"] = (server.frames_encoded - encoded0) / (t1 - t0)
        records = views.finish(paced)
    result["viewer_fps"] = [sum(1 for _, t in r if t0 <= t < t1) / (t1 - t0) for r in records]
    result["latency_ms"] = _latency([r for rs in records[:1] for r in rs], sent)
    return result


def _latency(records: list[tuple[int, float]], sent: dict[int, float]) -> dict[str, float]:
    lat = sorted(1000 * (t - sent[n]) for n, t in records if n in sent and t >= sent[n])
    if len(lat) < 10:
        return {}
    return {
        "p50": statistics.median(lat),
        "p95": lat[int(0.95 * (len(lat) - 1))],
        "max": lat[-1],
        "frames": len(lat),
    }


def print_table(runs: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="RtspServer on loopback (RTSP/TCP, x264 ultrafast zerolatency)")
    for name in (
        "size",
        "x264 threads",
        "viewers",
        "push fps",
        "encoded fps",
        "viewer fps",
        "latency p50/p95 ms",
    ):
        table.add_column(name, justify="right")
    for r in runs:
        lat = r["latency_ms"]
        table.add_row(
            f"{r['width']}×{r['height']}",
            str(r["encoder_threads"]),
            str(r["viewers"]),
            f"{r['push_fps']:.0f}",
            f"{r['encoded_fps']:.0f}" if r["viewers"] else "–",
            " / ".join(f"{v:.0f}" for v in r["viewer_fps"]) or "–",
            f"{lat['p50']:.0f} / {lat['p95']:.0f}" if lat else "–",
        )
    Console().print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["960x544", "1920x1080"])
    parser.add_argument("--viewers", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--seconds", type=float, default=4.0, help="per phase")
    parser.add_argument("--fps", type=float, default=30.0, help="paced rate for latency")
    parser.add_argument("--encoder-threads", nargs="+", type=int, default=[1])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "rtsp.json")
    args = parser.parse_args()
    gst = load_gstreamer()
    runs = []
    for size in args.sizes:
        width, height = (int(v) for v in size.split("x"))
        for threads in args.encoder_threads:
            for n in args.viewers:
                runs.append(
                    measure(
                        width,
                        height,
                        n_viewers=n,
                        seconds=args.seconds,
                        fps=args.fps,
                        threads=threads,
                    )
                )
                print(f"{size} threads={threads} viewers={n}: {runs[-1]}", flush=True)
    print_table(runs)
    report = {
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "gstreamer": gst.Gst.version_string(),
        },
        "seconds_per_phase": args.seconds,
        "paced_fps": args.fps,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
