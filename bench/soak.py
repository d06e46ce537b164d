"""Soak: one `heron run` of four live streams for an hour, its memory sampled every minute.

    .venv/bin/python bench/soak.py                                  # one hour, a sample a minute
    .venv/bin/python bench/soak.py --duration-s 120 --sample-s 10   # a quick check

The real pipeline, as separate services on a private redis-server: ingest → streammux →
inference (ONNX Runtime CPU, the committed face-mask detector through its nvinfer config) →
tracker (ByteTrack-class) → overlay (OSD into a fake sink), plus the control service. The four
sources are the face-mask clip (../shared) looped for ever by FFmpeg's `movie` filter and paced
by `realtime`, so they behave as cameras for the whole run; a small frame rate and size keep the
load modest on a shared 2-core box (docs/benchmarks/soak.md says what was chosen and why).

Every --sample-s: the RSS of every service (the process and its children: a restarted service
is found again by its command line), of the supervisor and of redis-server; Redis
`used_memory`; XLEN of every `heron:*` stream; frames the overlay has handled so far. At the
end: a least-squares slope per series over the whole run and over its last two thirds (the last
40 minutes of an hour, after warm-up), printed as a table, written to --out (JSON) with a PNG
beside it. SIGINT/SIGTERM stop the run early and still write both from the samples taken; the
JSON is also rewritten after every sample, so even a killed soak leaves its numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO.parent / "shared" / "data" / "videos" / "Face_Mask_Video.mp4"
INFER_CONFIG = REPO / "models" / "facemask" / "config_infer_primary_facemask.txt"
SERVICES = ("ingest", "streammux", "inference", "tracker", "overlay", "control")
MIB = 1024 * 1024
TAIL_FRACTION = 2 / 3  # the tail slope: the last 40 min of an hour, after warm-up


def generated_clip(out: Path) -> Path:
    """A 30 s 538x372 stand-in for the face-mask clip where ../shared is absent (a fresh clone):
    a moving test pattern, H.264, made once with PyAV."""
    import av

    pattern = "testsrc2=size=538x372:rate=25:duration=30"
    with av.open(pattern, format="lavfi") as src, av.open(str(out), "w") as dst:
        stream: Any = dst.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 538, 372, "yuv420p"
        for frame in src.decode(video=0):
            dst.mux(stream.encode(frame.reformat(format="yuv420p")))
        dst.mux(stream.encode(None))
    return out


def source_uri(clip: Path, fps: float, width: int, height: int) -> str:
    """A camera stand-in that lasts for ever: `movie` loops the file (loop=0), `setpts` keeps
    time rising across loops (the `fps` filter drops frames whose time goes back), `fps` caps
    the rate, `scale` shrinks the frames at decode, `realtime` paces them as a camera would."""
    graph = f"movie={clip}:loop=0,setpts=N/FRAME_RATE/TB,fps={fps:g},scale={width}:{height}"
    return f"lavfi://{graph},realtime"


def write_config(path: Path, uri: str, args: argparse.Namespace) -> Path:
    """deepstream-app config: N copies of the source (multi-URI), muxer at the source's size,
    the committed detector config with `interval`, tracker, OSD, fake sink (no encoder: the soak
    is about memory, and x264 would take a core from the others on this box)."""
    path.write_text(
        f"""[application]
enable-perf-measurement=1
perf-measurement-interval-sec={max(int(args.sample_s), 5)}

[source0]
enable=1
type=3
num-sources={args.streams}
uri={uri}

[streammux]
batch-size={args.streams}
batched-push-timeout=40000
width={args.width}
height={args.height}
live-source=1

[primary-gie]
enable=1
interval={args.interval}
gie-unique-id=1
config-file={INFER_CONFIG}

[tracker]
enable=1
tracker-width={args.width}
tracker-height={args.height}
ll-lib-file=libheron_bytetrack.so

[osd]
enable=1
border-width=2

[sink0]
enable=1
type=1
""",
        encoding="utf-8",
    )
    return path


def start_run(config: Path, run_dir: Path, args: argparse.Namespace) -> subprocess.Popen[str]:
    """`heron run` as a user starts it, in a session of its own, with every port free: its own
    redis-server on a free port (REDIS_URL dropped), gRPC and Detector APIs on port 0, metrics
    ports chosen by the run. It stops itself a little after the last sample."""
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    argv = [sys.executable, "-m", "heron.run", "run", "-c", str(config), "--run-dir", str(run_dir)]
    argv += ["--grpc-listen", "127.0.0.1:0", "--detector-listen", "127.0.0.1:0"]
    argv += ["--threads", str(args.threads), "--duration", str(args.duration_s + 30)]
    return subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )


def tee(proc: subprocess.Popen[str], log: Path, lines: list[str]) -> threading.Thread:
    """Copies the run's output to `log` and keeps the lines (the summary is read at the end)."""

    def copy() -> None:
        assert proc.stdout is not None  # Popen(stdout=PIPE)
        with log.open("w", encoding="utf-8") as out:
            for line in proc.stdout:
                out.write(line)
                out.flush()
                lines.append(line.rstrip("\n"))

    thread = threading.Thread(target=copy, daemon=True)
    thread.start()
    return thread


def service_name(proc: psutil.Process) -> str | None:
    """`heron.<service>` from `python -m heron.<service> ...`, `redis-server`, else None."""
    try:
        if proc.name() == "redis-server":  # it rewrites its argv: "redis-server 127.0.0.1:PORT"
            return "redis-server"
        argv = proc.cmdline()
    except psutil.Error:
        return None
    for module in argv[2:3] if argv[1:2] == ["-m"] else []:
        if module.startswith("heron.") and module[6:] in SERVICES:
            return module[6:]
    return None


def tree_rss(proc: psutil.Process) -> int:
    """RSS of a process and its descendants (multiprocessing's resource tracker is one)."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):  # ended between the listing and the read
            total += p.memory_info().rss
    return total


def rss_by_service(run: psutil.Process) -> dict[str, float]:
    """MiB per service under the run, found again at every sample (a restart has a new pid)."""
    rss: dict[str, float] = {"run (supervisor)": run.memory_info().rss / MIB}
    for child in run.children():
        name = service_name(child)
        if name is not None:
            rss[name] = rss.get(name, 0.0) + tree_rss(child) / MIB
    return rss


def redis_port(run: psutil.Process) -> int | None:
    """The private redis-server's port, from its command line (`redis-server 127.0.0.1:PORT`)."""
    for child in run.children():
        if service_name(child) == "redis-server":
            # argv[0] is the whole title; the rest of argv is blanked out
            m = re.search(r":(\d+)\b", child.cmdline()[0])
            if m:
                return int(m.group(1))
    return None


def redis_sample(port: int) -> dict[str, Any]:
    """Redis `used_memory` (MiB) and XLEN of every heron stream. A client per sample: a sample
    a minute costs nothing, and a Redis restarted by the run is simply found again."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)
    try:
        info = client.info("memory")
        lengths = {
            key.decode(): int(client.xlen(key))
            for key in sorted(client.scan_iter(match="heron:*", _type="stream", count=1000))
        }
    finally:
        client.close()
    return {
        "used_memory_mib": info["used_memory"] / MIB,
        "used_memory_rss_mib": info["used_memory_rss"] / MIB,
        "xlen": lengths,
    }


def overlay_frames(run_dir: Path) -> dict[str, int]:
    """Frames the overlay has handled so far, by result (drawn, overwritten, ...), summed over
    streams, from its /metrics (port in overlay.json). A restarted overlay starts from 0 again."""
    port = json.loads((run_dir / "overlay.json").read_text(encoding="utf-8"))["metrics"]["port"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    frames: dict[str, int] = {}
    for m in re.finditer(r'^heron_overlay_frames_total\{result="(\w+)",[^}]*\} (\S+)$', text, re.M):
        frames[m.group(1)] = frames.get(m.group(1), 0) + int(float(m.group(2)))
    return frames


def take_sample(run: psutil.Process, run_dir: Path, started: float) -> dict[str, Any]:
    sample: dict[str, Any] = {"t_s": time.monotonic() - started, "rss_mib": rss_by_service(run)}
    port = redis_port(run)
    try:
        sample["redis"] = redis_sample(port) if port is not None else None
    except Exception as exc:  # a sample with a hole beats a soak that dies
        sample["redis"] = None
        sample["redis_error"] = repr(exc)
    try:
        sample["frames"] = overlay_frames(run_dir)
    except Exception as exc:  # the overlay may be restarting
        sample["frames"] = None
        sample["frames_error"] = repr(exc)
    sample["load_average"] = os.getloadavg()
    return sample


def series(samples: list[dict[str, Any]]) -> dict[str, tuple[list[float], list[float]]]:
    """Each measured series as (hours, values): RSS per service, Redis memory, XLEN per stream."""
    out: dict[str, tuple[list[float], list[float]]] = {}

    def add(name: str, t_s: float, value: float) -> None:
        hours, values = out.setdefault(name, ([], []))
        hours.append(t_s / 3600)
        values.append(value)

    for s in samples:
        for name, mib in s["rss_mib"].items():
            add(f"RSS {name} (MiB)", s["t_s"], mib)
        if s.get("redis"):
            add("Redis used_memory (MiB)", s["t_s"], s["redis"]["used_memory_mib"])
            for key, n in s["redis"]["xlen"].items():
                add(f"XLEN {key} (entries)", s["t_s"], n)
    return out


def slope(hours: list[float], values: list[float]) -> float | None:
    """Least-squares slope in units per hour; None with fewer than 3 points."""
    if len(hours) < 3:
        return None
    return float(np.polyfit(np.array(hours), np.array(values), 1)[0])


def flowing_from_h(samples: list[dict[str, Any]]) -> float:
    """Hours at the first sample in which the overlay had drawn a frame: the samples before it
    are the services starting (imports, model load), not the pipeline running."""
    for s in samples:
        if (s.get("frames") or {}).get("drawn", 0) > 0:
            return float(s["t_s"]) / 3600
    return 0.0


def summarise(samples: list[dict[str, Any]], tail_from_h: float) -> list[dict[str, Any]]:
    """Per series: first and last value, max, and least-squares slopes per hour over the run
    (from the first frame out) and over its tail (from `tail_from_h`)."""
    start_h = flowing_from_h(samples)
    rows = []
    for name, (hours, values) in series(samples).items():
        run = [(h, v) for h, v in zip(hours, values, strict=True) if h >= start_h]
        tail = [(h, v) for h, v in run if h >= tail_from_h]
        rows.append(
            {
                "series": name,
                "first": run[0][1] if run else None,
                "last": values[-1],
                "max": max(values),
                "slope_per_h": slope([h for h, _ in run], [v for _, v in run]),
                "tail_slope_per_h": slope([h for h, _ in tail], [v for _, v in tail]),
                "samples": len(run),
            }
        )
    return rows


def frame_rate(samples: list[dict[str, Any]]) -> dict[str, float] | None:
    """Frames/s the overlay handled between the first and last sample that have counts."""
    counted = [s for s in samples if s.get("frames")]
    if len(counted) < 2:
        return None
    first, last = counted[0], counted[-1]
    span = last["t_s"] - first["t_s"]
    return {k: (v - first["frames"].get(k, 0)) / span for k, v in last["frames"].items()}


def print_table(rows: list[dict[str, Any]], tail_from_h: float) -> None:
    def num(x: float | None) -> str:
        return "-" if x is None else f"{x:+.2f}"

    head = f"{'series':<44}{'first':>9}{'last':>9}{'max':>9}{'slope/h':>10}"
    head += f"{f'after {tail_from_h * 60:.0f} min':>16}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['series']:<44}{r['first'] or 0:>9.1f}{r['last']:>9.1f}{r['max']:>9.1f}"
            f"{num(r['slope_per_h']):>10}{num(r['tail_slope_per_h']):>16}"
        )


def plot(samples: list[dict[str, Any]], path: Path, title: str) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from plotting import pyplot_or_none

    plt = pyplot_or_none(path)
    if plt is None or not samples:
        return
    data = series(samples)
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(16, 4.5))
    for name, (hours, values) in data.items():
        minutes = [h * 60 for h in hours]
        if name.startswith("RSS "):
            a.plot(minutes, values, ".-", label=name[4:-6])
        elif name.startswith("Redis"):
            b.plot(minutes, values, ".-", label="used_memory")
        elif name.startswith("XLEN "):
            # Past matplotlib's ten colours the lines repeat them: dash those to tell them apart.
            style = ".-" if len(c.get_lines()) < 10 else ".--"
            c.plot(minutes, values, style, label=name[5:].removesuffix(" (entries)"))
    a.set(xlabel="minutes", ylabel="MiB", title="RSS per service")
    b.set(xlabel="minutes", ylabel="MiB", title="Redis used_memory")
    b.set_ylim(bottom=0)
    c.set(xlabel="minutes", ylabel="entries", title="Stream lengths (XLEN)")
    for ax in (a, b, c):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    return {
        "cpu": model.group(1) if model else platform.processor(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def heron_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "HEAD"],
            check=False,
            capture_output=True,
            text=True,
        )
    except OSError:
        return None
    return done.stdout.strip() or None


def write_json(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.tmp")
    partial.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)  # a soak killed mid-write leaves the previous sample's file


def stop_run(proc: subprocess.Popen[str], timeout: float = 90.0) -> int:
    """SIGTERM to `heron run` (it stops its services in order), SIGKILL to its session if that
    takes longer than `timeout`."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--duration-s", type=float, default=3600.0)
    p.add_argument("--sample-s", type=float, default=60.0)
    p.add_argument("--streams", type=int, default=4)
    p.add_argument("--fps", type=float, default=2.0, help="each source's frame rate cap")
    p.add_argument("--width", type=int, default=538, help="source and [streammux] width")
    p.add_argument("--height", type=int, default=372, help="source and [streammux] height")
    p.add_argument("--interval", type=int, default=2, help="[primary-gie] interval")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    p.add_argument("--work", type=Path, default=None, help="config, run folder, run output")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "soak.json")
    p.add_argument(
        "--summarise",
        action="store_true",
        help="run nothing: recompute the table and redraw the PNG from the samples in --out",
    )
    return p.parse_args()


def soak(args: argparse.Namespace, result: dict[str, Any]) -> None:
    """Starts the run, samples it into result["samples"] (the JSON rewritten after each) until
    --duration-s or a signal, and stops it."""
    work = args.work or Path(tempfile.mkdtemp(prefix="heron-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    clip = CLIP if CLIP.is_file() else generated_clip(work / "clip.mp4")
    config = write_config(
        work / "soak_app.txt", source_uri(clip, args.fps, args.width, args.height), args
    )
    result.update(clip=str(clip), config=config.read_text(encoding="utf-8"))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    lines: list[str] = []
    proc = start_run(config, work / "run", args)
    reader = tee(proc, work / "heron-run.out", lines)
    run = psutil.Process(proc.pid)
    started = time.monotonic()
    print(f"soak: heron run pid {proc.pid}, run folder {work / 'run'}")
    samples: list[dict[str, Any]] = result["samples"]
    n = 0
    # One sample every --sample-s on a fixed grid (no drift), the first at once.
    while not stop.wait(max(0.0, started + n * args.sample_s - time.monotonic())):
        if proc.poll() is not None:
            print(f"soak: heron run ended early (exit {proc.returncode})")
            break
        samples.append(take_sample(run, work / "run", started))
        print_sample(samples[-1])
        write_json(args.out, result)
        n += 1
        if n * args.sample_s > args.duration_s + 1e-6:
            break
    result["interrupted"] = stop.is_set()
    result["exit_code"] = stop_run(proc)
    reader.join(10)
    result["run_summary"] = [line for line in lines[-12:] if not line.startswith("**PERF")]


def print_sample(s: dict[str, Any]) -> None:
    used = s["redis"]["used_memory_mib"] if s.get("redis") else float("nan")
    print(
        f"soak: {s['t_s'] / 60:5.1f} min  RSS {sum(s['rss_mib'].values()):7.1f} MiB  "
        f"Redis {used:6.2f} MiB  frames {s.get('frames')}",
        flush=True,
    )


def report(result: dict[str, Any], out: Path) -> None:
    """Slopes, frame rate, table, JSON and PNG from result["samples"]."""
    settings, samples = result["settings"], result["samples"]
    tail_from_h = settings["duration_s"] * (1 - TAIL_FRACTION) / 3600
    result["flowing_from_min"] = flowing_from_h(samples) * 60
    result["tail_from_min"] = tail_from_h * 60
    result["frames_per_s"] = frame_rate(samples)
    result["series"] = summarise(samples, tail_from_h)
    write_json(out, result)
    print_table(result["series"], tail_from_h)
    print(f"overlay frames/s: {result['frames_per_s']}; heron run exit {result.get('exit_code')}")
    span = samples[-1]["t_s"] / 60 if samples else 0
    title = (
        f"heron soak: {settings['streams']} streams, {span:.0f} min, "
        f"{result['machine']['cpu']}, {result['machine']['cores']} cores"
    )
    plot(samples, out.with_suffix(".png"), title)
    print(f"wrote {out} and {out.with_suffix('.png')}")


def main() -> None:
    args = parse_args()
    if args.summarise:
        report(json.loads(args.out.read_text(encoding="utf-8")), args.out)
        return
    result: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "heron_commit": heron_commit(),
        "machine": machine(),
        "load_average_before": os.getloadavg(),
        # The services inherit `heron run`'s environment: HERON_* settings change the run.
        "heron_environment": {k: v for k, v in os.environ.items() if k.startswith("HERON_")},
        "settings": {k: v for k, v in vars(args).items() if k not in ("work", "out", "summarise")},
        "samples": [],
    }
    soak(args, result)
    result["load_average_after"] = os.getloadavg()
    report(result, args.out)


if __name__ == "__main__":
    main()
