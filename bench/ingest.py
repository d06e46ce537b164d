"""Benchmark: decode frames/s per resolution, codec and decoder threads, through heron.ingest.

    .venv/bin/python bench/ingest.py                      # CPU (PyAV), this machine
    PYTHONPATH=services python3 bench/ingest.py --decoder nvdec --threads 0   # a GPU machine

Makes its clips with PyAV (FFmpeg's testsrc2 pattern, libx264 / libx265 when the encoder
exists) in --work, then decodes each with the decoder ingest uses (`heron.ingest.decoders`:
PyAV threaded, yuv420p → BGR with OpenCV; or NVDEC through PyNvVideoCodec), frames to BGR
numpy arrays, nothing else. With --publish (needs `redis-server` on PATH) it also runs the whole
ingest service on each H.264 clip against a private redis-server: decode, store the pixels
(shared-memory ring or inline JPEG) and publish every FrameRef, and reports frames/s end to end.
Prints tables and writes --out (JSON). Clips are kept in --work and reused by later runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

from heron.core.media_uri import parse_uri
from heron.core.plan.settings.ingest import DecoderKind
from heron.ingest.decoders import decoder_for
from heron.ingest.decoding import OpenRequest

REPO = Path(__file__).resolve().parents[1]
RESOLUTIONS = {"540p": (960, 540), "720p": (1280, 720), "1080p": (1920, 1080)}
ENCODERS = {"h264": "libx264", "hevc": "libx265"}
FPS = 30


def make_clip(path: Path, codec: str, width: int, height: int, frames: int) -> bool:
    """Encode `frames` of testsrc2 at width×height; False when the encoder is missing."""
    import av

    if ENCODERS[codec] not in av.codecs_available:
        return False
    if path.exists():
        return True
    source = av.open(f"testsrc2=size={width}x{height}:rate={FPS}", format="lavfi")
    partial = path.with_suffix(".part.mp4")
    with av.open(str(partial), "w") as out:
        stream: Any = out.add_stream(ENCODERS[codec], rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, FPS)
        # A camera-like GOP of one second; ultrafast keeps clip making short on 2 cores.
        stream.options = {"preset": "ultrafast", "g": str(FPS)}
        if codec == "hevc":
            stream.options["x265-params"] = "log-level=error"
        for number, frame in enumerate(source.decode(video=0)):
            if number == frames:
                break
            frame.pts = number
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    source.close()
    partial.rename(path)
    return True


def decode_fps(path: Path, decoder: DecoderKind, threads: int, repeats: int) -> dict[str, Any]:
    """Best of `repeats` full decodes of `path` to BGR."""
    request = OpenRequest(parse_uri(str(path)), threads=threads)
    runs = []
    frames = 0
    for _ in range(repeats):
        started = time.perf_counter()
        frames = sum(1 for _ in decoder_for(decoder).frames(request))
        runs.append(time.perf_counter() - started)
    best = min(runs)
    return {
        "frames": frames,
        "seconds": best,
        "fps": frames / best,
        "ms_per_frame": 1e3 * best / frames,
    }


def publish_fps(clip: Path, location: str, redis_url: str, work: Path) -> dict[str, Any]:
    """Frames/s of the ingest service on `clip`: decode + store + XADD of every FrameRef."""
    import yaml
    from heron.core.plan.settings.ingest import IngestSettings
    from heron.core.runtime import build_context, load_settings
    from heron.ingest.service import IngestService

    pipeline = work / "bench-pipeline.yaml"
    source = {"type": "uri", "enable": True, "uri": f"file://{clip}"}
    pipeline.write_text(
        yaml.safe_dump({"sources": {0: source}, "sinks": {0: {"type": "fake", "enable": True}}})
    )
    settings = load_settings(
        IngestSettings,
        redis_url=redis_url,
        frame_location=location,
        frame_stream_max_len=64,
        metrics={"port": 0},
    )
    service = IngestService(build_context(settings), pipeline=pipeline)
    started = time.perf_counter()
    service.start()
    while not all(w.finished for w in service.workers):
        time.sleep(0.005)
    seconds = time.perf_counter() - started
    frames = service.workers[0].published
    service.drain()
    service.close()
    return {"frames": frames, "seconds": seconds, "fps": frames / seconds}


def redis_server(work: Path) -> tuple[subprocess.Popen[bytes], str] | None:
    """A private redis-server on a free port, or None when none is installed."""
    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        return None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(work)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    client.close()
    return proc, url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decoder", choices=[k.value for k in DecoderKind], default="cpu")
    parser.add_argument("--resolutions", default="540p,1080p", help=f"of {', '.join(RESOLUTIONS)}")
    parser.add_argument("--codecs", default="h264,hevc", help="h264, hevc (skipped if absent)")
    parser.add_argument("--threads", default="1,2,0", help="decoder threads; 0 = FFmpeg's choice")
    parser.add_argument("--frames", type=int, default=300, help="frames per clip")
    parser.add_argument("--repeats", type=int, default=2, help="decodes per case (best counts)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/heron-bench-ingest"))
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "ingest.json")
    parser.add_argument("--publish", action="store_true", help="also time the whole service")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    args.work.mkdir(parents=True, exist_ok=True)
    decoder = DecoderKind(args.decoder)
    results: list[dict[str, Any]] = []
    skipped: list[str] = []
    for resolution in args.resolutions.split(","):
        width, height = RESOLUTIONS[resolution]
        for codec in args.codecs.split(","):
            clip = args.work / f"{codec}-{resolution}-{args.frames}.mp4"
            if not make_clip(clip, codec, width, height, args.frames):
                skipped.append(f"{codec}: encoder {ENCODERS[codec]} not in this FFmpeg build")
                continue
            for threads in (int(t) for t in args.threads.split(",")):
                row = decode_fps(clip, decoder, threads, args.repeats)
                row.update(resolution=resolution, width=width, height=height, codec=codec,
                           threads=threads, decoder=decoder.value)  # fmt: skip
                results.append(row)

    table = Table(title=f"decode to BGR, {decoder.value}, best of {args.repeats}")
    for column in ("resolution", "codec", "threads", "frames", "fps", "ms/frame"):
        table.add_column(column, justify="right")
    for r in results:
        shown = str(r["threads"]) if r["threads"] else "auto"
        table.add_row(r["resolution"], r["codec"], shown, str(r["frames"]),
                      f"{r['fps']:.0f}", f"{r['ms_per_frame']:.2f}")  # fmt: skip
    console = Console()
    console.print(table)
    for line in skipped:
        console.print(f"skipped {line}")
    published = _publish_table(args, console) if args.publish else []
    machine = {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"machine": machine, "results": results, "publish": published, "skipped": skipped},
            indent=2,
        )
        + "\n"
    )
    console.print(f"wrote {args.out}")


def _publish_table(args: argparse.Namespace, console: Any) -> list[dict[str, Any]]:
    from rich.table import Table

    server = redis_server(args.work)
    if server is None:
        console.print("skipped --publish: redis-server is not installed")
        return []
    proc, url = server
    rows: list[dict[str, Any]] = []
    try:
        for resolution in args.resolutions.split(","):
            clip = args.work / f"h264-{resolution}-{args.frames}.mp4"
            if not clip.exists():
                continue
            for location in ("shm", "jpeg"):
                row = publish_fps(clip, location, url, args.work)
                row.update(resolution=resolution, codec="h264", location=location)
                rows.append(row)
    finally:
        proc.terminate()
        proc.wait()
    table = Table(title="ingest service end to end: decode + store + publish (one stream)")
    for column in ("resolution", "location", "frames", "fps"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(r["resolution"], r["location"], str(r["frames"]), f"{r['fps']:.0f}")
    console.print(table)
    return rows


if __name__ == "__main__":
    main()
