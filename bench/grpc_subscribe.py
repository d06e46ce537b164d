"""Benchmark: Detections.Subscribe — messages/s and bus→client latency with 1, 10, 50 subscribers.

    .venv/bin/python bench/grpc_subscribe.py
    .venv/bin/python bench/grpc_subscribe.py --subscribers 1 10 --messages 2000 --seconds 3

A private redis-server, the control service as its own process (`python -m heron.control`,
as `heron run` starts it), and in this process a publisher of the last stage's metadata
(FrameMetadata with --objects tracked objects, ~0.3 KB, as the tracker writes it) plus N
subscriber threads, each on its own channel. Two phases for each N:

1. throughput: --messages frames published as fast as Redis takes them (batches of 100); the
   rate is every subscriber's frames over the time from the first publish to the last frame
   received by the slowest subscriber (what the server delivers, summed over subscribers);
2. latency: --rate frames/s for --seconds; each frame's latency is from its publish (the
   capture time it carries) to its arrival at a subscriber; p50/p95 over all subscribers.

Subscribers never hold the stream back and the bench raises max_behind so none skips: every
frame is delivered to every subscriber (a Gap would be reported). Client threads share this
process (and the GIL) and the machine's cores with the server and Redis; the CPU columns say
how busy the server process and this client process were (100 % = one core) over each N,
"server us/msg" the server's CPU time over every frame it delivered in both phases, and the
load column the 1-minute load average before and after it (others' work on the machine shows
there, and so do the bench's own threads). --fanout-entries sets the server's
subscribe.fanout_entries (0: each subscription reads the stream itself, as before the shared
reader); by default the server's own default. Prints a table, writes --out (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import psutil
from grpc_health.v1 import health_pb2, health_pb2_grpc
from heron.core import streams
from heron.core.bus import RedisBus
from heron.core.grpc import open_channel
from heron.run.redis_local import LocalRedis, free_port
from heron.v1.control_pb2 import SubscribeRequest
from heron.v1.control_pb2_grpc import DetectionsStub
from heron.v1.detection_pb2 import BoundingBox, DetectedObject, FrameMetadata
from heron.v1.frame_pb2 import FrameRef
from prometheus_client import CollectorRegistry

REPO = Path(__file__).resolve().parents[1]
PIPELINE = "bench"
THROUGHPUT, LATENCY, MARK = "tput", "lat", "mark"


def frame(stream_id: str, number: int, objects: int) -> FrameMetadata:
    meta = FrameMetadata(frame=FrameRef(stream_id=stream_id, frame_number=number))
    meta.frame.capture_time.FromNanoseconds(time.time_ns())
    for i in range(objects):
        box = BoundingBox(left=10.0 * i, top=20.0, width=64.0, height=80.0)
        label = "Mask" if i % 2 else "No_Mask"
        meta.objects.append(
            DetectedObject(bbox=box, class_id=i % 2, label=label, confidence=0.8, tracker_id=i + 1)
        )
    return meta


@dataclass
class Subscriber:
    """One subscription in a thread: frames per phase, latencies, when the last one came."""

    target: str
    throughput_total: int
    counts: dict[str, int] = field(default_factory=lambda: {THROUGHPUT: 0, LATENCY: 0, MARK: 0})
    latencies_ms: list[float] = field(default_factory=list)
    last_throughput_ns: int = 0
    gaps: int = 0
    error: str = ""
    call: Any = None

    def run(self, ready: threading.Event) -> None:
        try:
            with open_channel(self.target) as channel:
                self.call = DetectionsStub(channel).Subscribe(SubscribeRequest(), timeout=600)
                ready.set()
                for event in self.call:
                    self._event(event)
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.CANCELLED:
                self.error = f"{e.code().name}: {e.details()}"

    def stop(self) -> None:
        if self.call is not None:
            self.call.cancel()

    def _event(self, event: Any) -> None:
        now = time.time_ns()
        if event.WhichOneof("event") == "gap":
            self.gaps += 1
            return
        ref = event.frame.frame
        self.counts[ref.stream_id] += 1
        if ref.stream_id == LATENCY:
            self.latencies_ms.append((now - ref.capture_time.ToNanoseconds()) / 1e6)
        elif ref.stream_id == THROUGHPUT and ref.frame_number == self.throughput_total - 1:
            self.last_throughput_ns = now


def start_control(
    redis: LocalRedis, folder: Path, fanout_entries: int | None
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    subscribe: dict[str, int] = {"max_behind": 10_000_000, "max_subscribers": 128}
    if fanout_entries is not None:
        subscribe["fanout_entries"] = fanout_entries
    settings = {
        "pipeline": PIPELINE,
        "stage": "tracker",
        "metrics": {"host": "127.0.0.1", "port": free_port()},
        "grpc": {"listen": f"127.0.0.1:{port}", "grace_s": 0},
        "subscribe": subscribe,
        "log": {"level": "WARNING"},
    }
    path = folder / "control.json"
    path.write_text(json.dumps(settings))
    env = {**os.environ, "HERON_REDIS_URL": redis.url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "heron.control", "-c", str(path)],
        env=env,
        stdout=(folder / "control.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    target = f"127.0.0.1:{port}"
    with open_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service="heron.v1.Detections")
        deadline = time.monotonic() + 30
        while True:
            try:
                if (
                    health.Check(request, timeout=1).status
                    == health_pb2.HealthCheckResponse.SERVING
                ):
                    return proc, target
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(
                    f"the control service did not start; see {folder / 'control.log'}"
                )
            time.sleep(0.1)


def wait_all(subscribers: list[Subscriber], phase: str, count: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while any(s.counts[phase] < count for s in subscribers):
        if time.monotonic() > deadline:
            got = sorted(s.counts[phase] for s in subscribers)
            raise RuntimeError(f"{phase}: subscribers got {got[:3]}..{got[-3:]} of {count}")
        time.sleep(0.01)


def measure(target: str, bus: RedisBus, n: int, args: argparse.Namespace) -> dict[str, Any]:
    publisher = bus.publisher(streams.metadata("tracker", PIPELINE), FrameMetadata)
    subscribers = [Subscriber(target, args.messages) for _ in range(n)]
    threads = []
    for s in subscribers:
        ready = threading.Event()
        thread = threading.Thread(target=s.run, args=(ready,), daemon=True)
        thread.start()
        ready.wait(10)
        threads.append(thread)
    # Each subscription starts "from now": a mark every 50 ms until all of them see one.
    marks = 0
    while any(s.counts[MARK] == 0 for s in subscribers):
        publisher.publish(frame(MARK, marks, 0))
        marks += 1
        time.sleep(0.05)
    started = time.time_ns()
    batch = [frame(THROUGHPUT, i, args.objects) for i in range(args.messages)]
    for i in range(0, args.messages, 100):
        publisher.publish_many(batch[i : i + 100])
    wait_all(subscribers, THROUGHPUT, args.messages, timeout_s=120)
    elapsed_s = (max(s.last_throughput_ns for s in subscribers) - started) / 1e9
    interval = 1.0 / args.rate
    total = int(args.rate * args.seconds)
    next_at = time.monotonic()
    for i in range(total):
        publisher.publish(frame(LATENCY, i, args.objects))
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))
    wait_all(subscribers, LATENCY, total, timeout_s=60)
    for s in subscribers:
        s.stop()
    for thread in threads:
        thread.join(10)
    latencies = np.array([x for s in subscribers for x in s.latencies_ms])
    errors = [s.error for s in subscribers if s.error]
    return {
        "subscribers": n,
        "throughput_messages_per_s": n * args.messages / elapsed_s,
        "per_subscriber_messages_per_s": args.messages / elapsed_s,
        "latency_rate_per_s": args.rate,
        "latency_p50_ms": float(np.percentile(latencies, 50)),
        "latency_p95_ms": float(np.percentile(latencies, 95)),
        "gaps": sum(s.gaps for s in subscribers),
        "errors": errors,
        "delivered": sum(sum(s.counts.values()) for s in subscribers),  # every phase's frames
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--messages", type=int, default=3000, help="Throughput phase frames.")
    parser.add_argument("--rate", type=float, default=100.0, help="Latency phase frames/s.")
    parser.add_argument("--seconds", type=float, default=5.0, help="Latency phase length.")
    parser.add_argument("--objects", type=int, default=5, help="Objects per frame.")
    parser.add_argument(
        "--fanout-entries",
        type=int,
        default=None,
        help="The server's subscribe.fanout_entries (0: no shared reader); default: its own.",
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "grpc.json")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="heron-bench-grpc-") as tmp:
        redis = LocalRedis(Path(tmp) / "redis", persist=False)
        redis.start()
        control, target = start_control(redis, Path(tmp), args.fanout_entries)
        bus = RedisBus.from_url(redis.url, registry=CollectorRegistry())
        try:
            print(HEADER, flush=True)
            server, client = psutil.Process(control.pid), psutil.Process()
            for n in args.subscribers:
                # A fresh stream for each N: the same backlog-free start.
                bus.client.delete(streams.metadata("tracker", PIPELINE).key)
                load_before = os.getloadavg()[0]
                before = (_cpu(server), _cpu(client), time.monotonic())
                rows.append(measure(target, bus, n, args))
                wall = time.monotonic() - before[2]
                rows[-1]["server_cpu_percent"] = 100 * (_cpu(server) - before[0]) / wall
                rows[-1]["server_cpu_us_per_message"] = (
                    1e6 * (_cpu(server) - before[0]) / rows[-1]["delivered"]
                )
                rows[-1]["client_cpu_percent"] = 100 * (_cpu(client) - before[1]) / wall
                rows[-1]["load_1min"] = [load_before, os.getloadavg()[0]]
                print_row(rows[-1])
        finally:
            bus.close()
            control.terminate()
            control.wait(30)
            redis.stop()
    size = len(frame(THROUGHPUT, 0, args.objects).SerializeToString())
    result = {
        "benchmark": "grpc-subscribe",
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "grpcio": grpc.__version__,
        },
        "message_bytes": size,
        "messages": args.messages,
        "fanout_entries": args.fanout_entries,  # None: the server's default
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out} ({size}-byte FrameMetadata, {args.objects} objects)")


HEADER = (
    f"{'subscribers':>11} {'msgs/s total':>13} {'msgs/s each':>12} {'p50 ms':>8} "
    f"{'p95 ms':>8} {'gaps':>5} {'server CPU':>11} {'client CPU':>11} {'server us/msg':>14} "
    f"{'load':>11}"
)


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def print_row(row: dict[str, Any]) -> None:
    print(
        f"{row['subscribers']:>11} {row['throughput_messages_per_s']:>13,.0f} "
        f"{row['per_subscriber_messages_per_s']:>12,.0f} {row['latency_p50_ms']:>8.2f} "
        f"{row['latency_p95_ms']:>8.2f} {row['gaps']:>5} "
        f"{row['server_cpu_percent']:>10.0f}% {row['client_cpu_percent']:>10.0f}% "
        f"{row['server_cpu_us_per_message']:>14.0f} "
        f"{row['load_1min'][0]:>5.1f}-{row['load_1min'][1]:<5.1f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
