"""Benchmark: the whole pipeline under `heron run`, as separate services and in one process.

    .venv/bin/python bench/pipeline.py
    .venv/bin/python bench/pipeline.py --streams 1 2 --frames 150

For 1, 2 and 4 streams of the real face-mask clip (../shared; a cut of its first --frames
frames, re-encoded once), `heron run` starts ingest, inference (ONNX Runtime), the IOU tracker and
the overlay (OSD into an MP4 file sink) with a private redis-server, lossless (every frame
through). Measured per run: end-to-end frames/s at the last bus stage (first to last frame out),
p50/p95 latency from capture (decode, `FrameRef.capture_time`) to the last stage's metadata
publish, and each service's CPU (psutil, user+system seconds over the run's wall time; 100 % =
one core) and per frame (CPU ms each frame costs that service). The limit: raw ONNX Runtime
forward throughput of the same model file the inference service loads (batch 1, same threads).
Each run is made twice (`--runners`): a process per service on a private redis-server, and
`heron run --in-process` (threads of one process on in-memory queues); "of raw" is the
pipeline's fps over the raw forward measured right before and after that run (their mean).
The model is models/facemask/model.onnx when committed, else the demo's network with untrained
heads (same compute). `--precision int8` (the default) runs it as DeepStream would with
`network-mode=1` and `int8-calib-file`: the inference service quantises it with the TensorRT
calibration cache (models/facemask/calibration.bin when committed, else one `heron calibrate`
makes once into ~/.cache/heron/bench). Prints a table, writes --out (JSON) and a PNG plot beside
it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CACHE = Path.home() / ".cache" / "heron" / "bench"
KAGGLE = REPO.parent / "shared" / "data" / "facemask-kaggle" / "images"
CLIP = REPO.parent / "shared" / "data" / "videos" / "Face_Mask_Video.mp4"
DEMO = REPO / "services" / "heron" / "run" / "demo"
RAW_SECONDS = 4.0  # each raw forward measurement, before and after every run


def cut_clip(source: Path, frames: int, out: Path) -> tuple[Path, float]:
    """The first `frames` frames of `source`, re-encoded (H.264, CRF 18); returns (path, fps)."""
    import av

    with av.open(str(source)) as src, av.open(str(out), "w") as dst:
        video = src.streams.video[0]
        rate = video.average_rate or Fraction(25)
        fps = float(rate)
        stream: Any = dst.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = video.width, video.height, "yuv420p"
        stream.time_base = 1 / Fraction(rate)
        stream.options = {"crf": "18", "preset": "veryfast"}
        for n, frame in enumerate(src.decode(video=0)):
            if n >= frames:
                break
            frame.pts = n
            dst.mux(stream.encode(frame.reformat(format="yuv420p")))
        dst.mux(stream.encode(None))
    return out, fps


def clip_size(clip: Path) -> tuple[int, int]:
    import av

    with av.open(str(clip)) as container:
        video = container.streams.video[0]
        return int(video.width), int(video.height)


def bench_model(work: Path) -> tuple[Path, str]:
    committed = REPO / "models" / "facemask" / "model.onnx"
    if committed.is_file():
        return committed, "committed models/facemask/model.onnx"
    from heron.run.demo.model import SPEC_NAME, untrained

    recipe = REPO / "models" / "facemask" / SPEC_NAME
    return untrained(recipe, work / "model").onnx, "demo MobileNetV2 DetectNet_v2, untrained heads"


def calibration(onnx: Path) -> Path:
    """The TensorRT calibration cache of `onnx`: the committed one, else made once here by
    `heron calibrate` (entropy, 64 face-mask images) and kept in CACHE."""
    import hashlib
    import subprocess
    import sys

    committed = onnx.parent / "calibration.bin"
    if committed.is_file():
        return committed
    key = hashlib.sha256(onnx.read_bytes()).hexdigest()[:16]
    folder = CACHE / f"calib-{key}"
    cache = folder / "calibration.bin"
    if not cache.is_file():
        print(f"calibrating {onnx} on {KAGGLE} (once; kept in {folder})")
        argv = [str(Path(sys.executable).parent / "heron"), "calibrate", "-m", str(onnx)]
        argv += ["--images", str(KAGGLE), "-o", str(folder), "--batches", "8"]
        subprocess.run([*argv, "--batch-size", "8", "--keep-fp", "none"], check=True)
    return cache


def served_model(onnx: Path, calib: Path | None) -> Path:
    """The file the inference service runs: the INT8 model it makes from `calib`, or `onnx`."""
    from heron.core.config.nvinfer_models import InferProperty
    from heron.inference.backends.ort_precision import model_for_mode

    if calib is None:
        return onnx
    prop = InferProperty.model_validate({"network_mode": "int8", "int8_calib_file": calib})
    return model_for_mode(onnx, prop)[0]


def model_input(onnx: Path) -> tuple[int, int]:
    import onnxruntime as ort

    shape = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"]).get_inputs()[0]
    return int(shape.shape[2]), int(shape.shape[3])


def raw_forward(onnx: Path, threads: int, seconds: float) -> float:
    """ONNX Runtime images/s at batch 1 on random input: the pipeline's upper bound."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # as the service
    session = ort.InferenceSession(str(onnx), options, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    x = np.random.default_rng(0).random((1, *inp.shape[1:]), dtype=np.float32)
    for _ in range(3):
        session.run(None, {inp.name: x})
    n, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        session.run(None, {inp.name: x})
        n += 1
    return n / (time.perf_counter() - started)


def write_config(
    folder: Path,
    uri: str,
    onnx: Path,
    streams: int,
    out_mp4: Path,
    *,
    size: tuple[int, int],
    calib: Path | None,
    sink: str = "file",
) -> Path:
    """The demo pipeline, with N copies of the source (multi-URI), this model and no RTSP."""
    from heron.core.config.deepstream import read_deepstream_app
    from heron.core.config.models import Pipeline
    from heron.core.config.yaml_loader import to_yaml

    pipeline, _ = read_deepstream_app(DEMO / "demo_app.txt")
    data: dict[str, Any] = pipeline.model_dump()
    source = data["sources"][0]
    source.update(type="multi_uri", uri=uri, num_sources=streams)
    data["sinks"] = {
        0: {"type": "file", "enable": True, "output_file": out_mp4, "container": "mp4"}
        if sink == "file"
        else {"type": "fake", "enable": True}  # deepstream-app's perf setup: sink type=1
    }
    data["tiled_display"] = {
        "enable": streams > 1,
        "rows": 2 if streams > 2 else 1,
        "columns": 2 if streams > 1 else 1,
        "width": 1280,
        "height": 720,
    }
    data["streammux"]["batch_size"] = streams
    # The muxer at the clip's own size: scaling 538x372 up to the demo's 960x544 only to have
    # inference scale it down again would cost this 2-core machine for nothing.
    data["streammux"]["width"], data["streammux"]["height"] = size
    data["application"]["perf_measurement_interval_sec"] = 5
    prop = data["primary_gie"]["nvinfer"]["property"]
    prop["onnx_file"] = onnx
    prop["batch_size"] = streams
    if calib is not None:  # DeepStream's INT8: network-mode=1 + int8-calib-file
        prop["network_mode"], prop["int8_calib_file"] = "int8", calib
    path = folder / "pipeline.yaml"
    path.write_text(to_yaml(Pipeline.model_validate(data)), encoding="utf-8")
    return path


class CpuSampler:
    """Samples each service's CPU seconds (process and its children) while the run goes, with
    the time of each sample, so CPU can be counted over the frames' span only (start-up —
    imports, model load, INT8 quantisation — is not a per-frame cost)."""

    def __init__(self) -> None:
        self.cpu_s: dict[str, dict[int, float]] = {}
        self.timeline: list[tuple[float, dict[str, float]]] = []
        self.supervisor: Any = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def attach(self, _plan: Any, supervisor: Any) -> None:
        self.supervisor = supervisor
        self._thread.start()

    def _loop(self) -> None:
        import psutil

        own = psutil.Process()
        start = own.cpu_times()
        while not self._stop.wait(0.25):
            if not hasattr(self.supervisor, "children"):  # --in-process: one process, threads
                times = own.cpu_times()
                used = times.user + times.system - start.user - start.system
                self.cpu_s["all, one process"] = {own.pid: used}
                totals = {name: sum(by_pid.values()) for name, by_pid in self.cpu_s.items()}
                self.timeline.append((time.monotonic(), totals))
                continue
            for child in self.supervisor.children:
                pid = child.pid
                if pid is None:
                    continue
                try:
                    procs = [psutil.Process(pid)]
                    procs += procs[0].children(recursive=True)
                    used = sum(p.cpu_times().user + p.cpu_times().system for p in procs)
                except psutil.Error:
                    continue  # it just exited: keep its last sample
                self.cpu_s.setdefault(child.spec.name, {})[pid] = used
            totals = {name: sum(by_pid.values()) for name, by_pid in self.cpu_s.items()}
            self.timeline.append((time.monotonic(), totals))

    def stop(self) -> dict[str, float]:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        return {name: sum(by_pid.values()) for name, by_pid in self.cpu_s.items()}

    def between(self, start: float, end: float) -> tuple[dict[str, float], float]:
        """CPU seconds each service used between the first and last samples inside
        [start, end], and the seconds between those samples."""
        inside = [(t, cpu) for t, cpu in self.timeline if start <= t <= end]
        if len(inside) < 2:
            return {}, 0.0
        (t0, first), (t1, last) = inside[0], inside[-1]
        return {name: last[name] - first.get(name, 0.0) for name in last}, t1 - t0


def run_once(
    clip: Path,
    onnx: Path,
    streams: int,
    work: Path,
    *,
    threads: int,
    realtime_s: float | None,
    calib: Path | None,
    sink: str = "file",
    in_process: bool = False,
) -> dict[str, Any]:
    """One `heron run`: lossless over the file, or the file paced at its rate for realtime_s;
    its services as processes on Redis, or `in_process` as threads on in-memory queues."""
    from heron.run.options import RunOptions
    from heron.run.runner import RunRequest, run_pipeline

    mode = "lossless" if realtime_s is None else "realtime"
    runner = "in-process" if in_process else "processes"
    folder = work / f"{mode}-{streams}-{runner}"
    folder.mkdir(parents=True, exist_ok=True)
    # Real time: FFmpeg's movie source behind `realtime` is a live source pacing the file at its
    # own rate (a camera stand-in): the live topology, frames dropped when a stage falls behind.
    uri = clip.as_uri() if realtime_s is None else f"lavfi://movie={clip},realtime"
    config = write_config(
        folder,
        uri,
        onnx,
        streams,
        folder / "out.mp4",
        size=clip_size(clip),
        calib=calib,
        sink=sink,
    )
    sampler = CpuSampler()
    lines: list[str] = []
    started = time.monotonic()
    result = run_pipeline(
        RunRequest(
            config=config,
            run_dir=folder / "run",
            options=RunOptions(intra_op_threads=threads, in_process=in_process),
            on_started=sampler.attach,
            max_duration_s=realtime_s,
        ),
        out=lines.append,
    )
    wall = time.monotonic() - started
    cpu = sampler.stop()
    if result.exit_code != 0:
        raise SystemExit(f"heron run failed ({result.reason}):\n" + "\n".join(lines[-20:]))
    latencies = np.array([x for v in result.latencies_s.values() for x in v])
    frames = sum(result.frames.values())
    first, last = result.first_frame_at, result.last_frame_at
    span = last - first if first is not None and last is not None else float("nan")
    steady, steady_s = ({}, 0.0) if first is None or last is None else sampler.between(first, last)
    return {
        "mode": mode,
        "runner": runner,
        "streams": streams,
        "frames": frames,
        "fps": frames / span,
        "fps_per_stream": frames / span / streams,
        "latency_p50_ms": float(np.percentile(latencies, 50) * 1000),
        "latency_p95_ms": float(np.percentile(latencies, 95) * 1000),
        "wall_s": wall,
        "cpu_percent": {name: 100 * s / wall for name, s in sorted(cpu.items())},
        # What each frame costs each service, whatever the load: CPU seconds over the span of
        # the frames (start-up excluded) / the frames out in that span.
        "cpu_ms_per_frame": {
            name: 1000 * s / max(frames / span * steady_s, 1) for name, s in sorted(steady.items())
        },
        "restarts": result.restarts,
    }


def plot(rows: list[dict[str, Any]], raw: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for (mode, style), runner in itertools.product(
        (("lossless", "o-"), ("realtime", "s--")), ("processes", "in-process")
    ):
        runs = [r for r in rows if r["mode"] == mode and r.get("runner", "processes") == runner]
        if not runs:
            continue
        n = [r["streams"] for r in runs]
        name = f"{mode}, {runner}"
        a.plot(n, [r["fps"] for r in runs], style, label=f"{name}, all streams")
        b.plot(n, [r["latency_p50_ms"] for r in runs], style, label=f"{name} p50")
        b.plot(n, [r["latency_p95_ms"] for r in runs], style, alpha=0.5, label=f"{name} p95")
    a.axhline(raw, color="grey", linestyle="--", label="raw ONNX Runtime forward")
    a.axhline(25, color="green", linestyle=":", label="25 fps (one real-time stream)")
    a.set(xlabel="streams", ylabel="frames/s", title="End-to-end throughput")
    a.legend(fontsize=8)
    b.set(xlabel="streams", ylabel="ms", title="Capture → last stage latency", yscale="log")
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--frames", type=int, default=250, help="frames of the clip per stream")
    p.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    p.add_argument(
        "--realtime-seconds", type=float, default=20.0, help="0: skip; keep below the clip's 26 s"
    )
    p.add_argument(
        "--precision",
        choices=["int8", "fp32"],
        default="int8",
        help="int8: network-mode=1 with the calibration cache; fp32: network-mode=0",
    )
    p.add_argument(
        "--sink",
        choices=["file", "fake"],
        default="file",
        help="file: OSD into an MP4 (the demo); fake: no encoding, as deepstream-app's perf runs",
    )
    p.add_argument(
        "--runners",
        nargs="+",
        choices=["processes", "in-process"],
        default=["processes", "in-process"],
        help="processes: a service per process on Redis; in-process: `heron run --in-process`",
    )
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "pipeline.json")
    args = p.parse_args()
    if not CLIP.is_file():
        print(f"pipeline bench: {CLIP} is absent (a fresh clone has no ../shared); skipped")
        return
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="heron-bench-pipeline-") as tmp:
        work = Path(tmp)
        clip, fps = cut_clip(CLIP, args.frames, work / "clip.mp4")
        onnx, model_name = bench_model(work)
        calib = calibration(onnx) if args.precision == "int8" else None
        height, width = model_input(onnx)
        served = served_model(onnx, calib)
        rows: list[dict[str, Any]] = []

        def beside_forward(**run: Any) -> dict[str, Any]:
            """One run with the raw forward measured right before and right after it: the
            forward drifts by more than 10 % between runs on a shared box, so each run is
            divided by its own."""
            before = raw_forward(served, args.threads, seconds=RAW_SECONDS)
            row = run_once(onnx=onnx, work=work, threads=args.threads, calib=calib,
                           sink=args.sink, **run)  # fmt: skip
            after = raw_forward(served, args.threads, seconds=RAW_SECONDS)
            row["raw_forward_img_per_s"] = [before, after]
            row["of_raw"] = row["fps"] / ((before + after) / 2)
            return row

        for in_process in [r == "in-process" for r in args.runners]:
            for n in args.streams:
                rows.append(
                    beside_forward(clip=clip, streams=n, realtime_s=None, in_process=in_process)
                )
            if args.realtime_seconds > 0:
                # The whole clip (635 frames, 26 s): a live source that reaches its end
                # reconnects after a backoff, and that gap would count against the pipeline.
                for n in args.streams:
                    rows.append(
                        beside_forward(
                            clip=CLIP,
                            streams=n,
                            realtime_s=args.realtime_seconds,
                            in_process=in_process,
                        )
                    )
        raw = statistics.median(x for r in rows for x in r["raw_forward_img_per_s"])
    load_after = os.getloadavg()
    print(
        f"model: {model_name} ({args.precision}), input {width}x{height}; clip {args.frames} "
        f"frames at {fps:g} fps"
    )
    every = [x for r in rows for x in r["raw_forward_img_per_s"]]
    print(
        f"raw ONNX Runtime forward (batch 1, {args.threads} threads), before and after each run: "
        f"median {raw:.1f} img/s, {min(every):.1f} to {max(every):.1f}"
    )
    stages = sorted({k for r in rows for k in r["cpu_percent"]})
    head = f"{'runner':>11}{'mode':>9}{'streams':>8}{'fps':>7}{'raw':>7}{'of raw':>7}{'fps/str':>8}"
    head += f"{'p50 ms':>8}{'p95 ms':>8}" + "".join(f"{s[:9]:>10}" for s in stages)
    print(head + "   (CPU %, 100 = one core)")
    print("-" * len(head))
    for r in rows:
        cpu = "".join(f"{r['cpu_percent'].get(s, 0):>10.0f}" for s in stages)
        print(
            f"{r['runner']:>11}{r['mode']:>9}{r['streams']:>8}{r['fps']:>7.1f}"
            f"{sum(r['raw_forward_img_per_s']) / 2:>7.1f}{r['of_raw']:>7.0%}"
            f"{r['fps_per_stream']:>8.1f}"
            f"{r['latency_p50_ms']:>8.0f}{r['latency_p95_ms']:>8.0f}{cpu}"
        )
    print("CPU ms per frame:")
    for r in rows:
        cost = "  ".join(f"{s} {r['cpu_ms_per_frame'].get(s, 0):.1f}" for s in stages)
        print(f"  {r['runner']:>10} {r['mode']:>9} {r['streams']} stream(s): {cost}")
    print(f"load average before {load_before[0]:.1f}, after {load_after[0]:.1f} (2 cores)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "model": model_name,
        "precision": args.precision,
        "sink": args.sink,
        "input": [width, height],
        "clip_frames": args.frames,
        "clip_fps": fps,
        "threads": args.threads,
        "raw_forward_img_per_s": raw,  # the median of every run's before/after measurement
        "runs": rows,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "load_average_before": load_before,
        "load_average_after": load_after,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    plot(rows, raw, args.out.with_suffix(".png"))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
