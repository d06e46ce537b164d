"""Benchmark: the Detector gRPC service's images/s against the in-process forward of its model.

    .venv/bin/python bench/grpc_detect.py
    .venv/bin/python bench/grpc_detect.py --seconds 3 --batches 1 8 --threads 2

One inference service, started in this process (ONNX Runtime on the committed
models/facemask/model.onnx with its nvinfer config, `batch-size` set to the largest batch
measured so one request is one backend call; the bus on in-process queues, its loop idle), and
one loopback gRPC client; then the same with a model of the same tensors and next to no
compute (`transport_model`), where what is left is the API's own cost. At each batch size, the
same images through:

1. forward: the service's backend on an already preprocessed batch (the model alone);
2. in-process detect: the service's `ImageDetector` on decoded pixels (preprocess, forward,
   postprocess: what a Detect call does once its images are decoded);
3. gRPC Detect, raw BGR24: a client's request through the server (serialise, transport, the
   checks, then 2);
4. gRPC Detect, JPEG: the same with the files' own JPEG bytes (adds decoding).

The same backend object and thread settings (the service's defaults: ORT threads idle-sleep,
`spin_wait` off) serve all four; the paths take turns in `--rounds` rounds and the median round
is reported, so a drift of the machine spreads over all of them. Client and server share this
machine's cores, as they do on one host. Images: the Kaggle face-mask photos (../shared/data)
when present, else generated 960x544 frames. Prints a table, writes --out (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FACEMASK = REPO / "models" / "facemask"
SHARED_IMAGES = REPO.parent / "shared" / "data" / "facemask-kaggle" / "images"


def write_config(work: Path, batch: int, onnx: Path) -> Path:
    """The committed nvinfer config with absolute paths, `onnx` and `batch-size`, in a
    pipeline."""
    lines = []
    for line in (FACEMASK / "config_infer_primary_facemask.txt").read_text().splitlines():
        key, _, value = line.partition("=")
        key = key.strip()
        if key == "onnx-file":
            lines.append(f"onnx-file={onnx}")
        elif key in ("labelfile-path", "int8-calib-file"):
            lines.append(f"{key}={FACEMASK / value.strip()}")
        elif key == "batch-size":
            lines.append(f"batch-size={batch}")
        else:
            lines.append(line)
    nvinfer = work / f"nvinfer-{onnx.stem}.txt"
    nvinfer.write_text("\n".join(lines) + "\n")
    pipeline = work / f"pipeline-{onnx.stem}.yaml"
    pipeline.write_text(
        "sources:\n"
        "  0: {type: camera_v4l2, enable: true, camera_v4l2_dev_node: 0, camera_width: 960,"
        " camera_height: 544, camera_fps_n: 30}\n"
        "sinks:\n  0: {type: fake, enable: true}\n"
        "streammux: {width: 960, height: 544}\n"
        f"primary_gie: {{enable: true, config_file: {nvinfer}}}\n"
    )
    return pipeline


def transport_model(path: Path) -> Path:
    """The committed model's tensors (3x544x960 in; stride-8 coverage and bbox grids out) with
    next to no compute: 8x8 average pool and zeroed 1x1 heads whose coverage is ~0, so nothing
    reaches clustering. What is left of a Detect is the API: transport, checks, decode, resize."""
    import torch
    from torch import nn

    class Transport(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pool = nn.AvgPool2d(8)
            self.cov = nn.Conv2d(3, 2, 1)
            self.bbox = nn.Conv2d(3, 8, 1)
            for head in (self.cov, self.bbox):
                nn.init.zeros_(head.weight)
                if head.bias is not None:
                    nn.init.constant_(head.bias, -10.0)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            f = self.pool(x)
            return torch.sigmoid(self.cov(f)), self.bbox(f)

    names = {
        "input_names": ["input_1"],
        "output_names": ["output_cov/Sigmoid", "output_bbox/BiasAdd"],
    }
    torch.onnx.export(
        Transport().eval(),
        (torch.zeros(1, 3, 544, 960),),
        str(path),
        dynamic_axes={n: {0: "batch"} for n in [*names["input_names"], *names["output_names"]]},
        opset_version=17,
        dynamo=False,
        **names,  # type: ignore[arg-type]
    )
    return path


def load_images(count: int) -> tuple[list[bytes], str]:
    """JPEG bytes of `count` images, and where they came from."""
    import cv2

    paths = sorted(SHARED_IMAGES.glob("*.jpg"))[:count] if SHARED_IMAGES.is_dir() else []
    if len(paths) == count:
        sizes = []
        for p in paths:
            h, w = np.asarray(cv2.imread(str(p), cv2.IMREAD_COLOR)).shape[:2]
            sizes.append(f"{w}x{h}")
        where = SHARED_IMAGES.relative_to(REPO.parent)
        return [p.read_bytes() for p in paths], f"{where}: first {count} files ({', '.join(sizes)})"
    rng = np.random.default_rng(0)
    data = []
    for _ in range(count):
        image = (rng.random((544, 960, 3)) * 255).astype(np.uint8)
        data.append(bytes(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1]))
    return data, "generated 960x544 noise (JPEG q90)"


def rate(call: Callable[[], Any], batch: int, seconds: float) -> dict[str, float]:
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or calls < 2:
        call()
        calls += 1
    return {"images_per_s": calls * batch / elapsed, "calls": calls}


def interleaved(
    paths: dict[str, Callable[[], Any]], batch: int, seconds: float, rounds: int
) -> dict[str, dict[str, Any]]:
    """Each path `rounds` times for `seconds / rounds`, the paths taking turns, so a drift of
    the machine (another process, clock boost) spreads over all of them; the median round."""
    for call in paths.values():  # warm-up
        call()
        call()
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in paths}
    for _ in range(rounds):
        for name, call in paths.items():
            runs[name].append(rate(call, batch, seconds / rounds))
    out = {}
    for name, rs in runs.items():
        per_s = sorted(r["images_per_s"] for r in rs)
        median = per_s[len(per_s) // 2]
        out[name] = {
            "images_per_s": round(median, 2),
            "ms_per_request": round(1000 * batch / median, 2),
            "rounds_images_per_s": [round(r["images_per_s"], 2) for r in rs],
            "calls": sum(int(r["calls"]) for r in rs),
        }
    return out


def start_service(pipeline: Path, threads: int, batch: int) -> Any:
    from heron.core.bus import MemoryTransport
    from heron.core.plan.settings.inference import InferenceSettings
    from heron.core.runtime import build_context, load_settings
    from heron.inference.service import InferenceService
    from prometheus_client import CollectorRegistry

    settings = load_settings(
        InferenceSettings,
        [],
        pipeline_config=pipeline,
        input="frames",
        frame_streams=["bench"],
        backend={"kind": "onnxruntime", "intra_op_threads": threads},
        grpc={"listen": "127.0.0.1:0", "max_receive_message_mb": 256},
        detect_max_images=max(batch, 1),
    )
    ctx = build_context(
        settings, CollectorRegistry(), exit=lambda code: None, transport=MemoryTransport()
    )
    service = InferenceService(ctx)
    service.start()
    return service


def measure(
    service: Any, jpegs: list[bytes], batches: list[int], seconds: float, rounds: int
) -> list[Any]:
    import cv2
    from heron.core.grpc.channel import open_channel
    from heron.inference.image_detector import ImageDetector
    from heron.v1.detector_pb2 import DetectRequest, Image, RawImage
    from heron.v1.detector_pb2_grpc import DetectorStub
    from heron.v1.frame_pb2 import PixelFormat

    detector = ImageDetector(
        service.preprocess, service.shared, service.head, max(batches), service.ctx.metrics
    )
    pixels = [np.asarray(cv2.imdecode(np.frombuffer(j, np.uint8), cv2.IMREAD_COLOR)) for j in jpegs]
    channel = open_channel(f"127.0.0.1:{service.api.port}", max_message_mb=256)
    stub = DetectorStub(channel)
    rows = []
    for b in batches:
        chosen, chosen_jpegs = pixels[:b], jpegs[:b]
        batch, _ = service.preprocess(chosen)
        raw = DetectRequest(
            images=[
                Image(raw=RawImage(data=p.tobytes(), width=p.shape[1], height=p.shape[0],
                                   format=PixelFormat.PIXEL_FORMAT_BGR24))
                for p in chosen
            ]
        )  # fmt: skip
        jpeg = DetectRequest(images=[Image(encoded=j) for j in chosen_jpegs])
        paths: dict[str, Callable[[], Any]] = {
            "forward (model only)": partial(service.shared.infer, batch),
            "in-process detect": partial(detector.detect, chosen),
            "gRPC Detect, raw BGR24": partial(stub.Detect, raw, timeout=60),
            "gRPC Detect, JPEG": partial(stub.Detect, jpeg, timeout=60),
        }
        for name, r in interleaved(paths, b, seconds, rounds).items():
            rows.append({"path": name, "batch": b, **r, "request_mb": _request_mb(name, raw, jpeg)})
            spread = ", ".join(f"{x:.1f}" for x in r["rounds_images_per_s"])
            print(f"  {name:<24} bs{b:<3} {r['images_per_s']:8.2f} img/s ({spread})", flush=True)
    channel.close()
    return rows


def _request_mb(name: str, raw: Any, jpeg: Any) -> float | None:
    if "raw" in name:
        return round(float(raw.ByteSize()) / 2**20, 2)
    if "JPEG" in name:
        return round(float(jpeg.ByteSize()) / 2**20, 3)
    return None


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| path | batch | images/s | ms/request | vs forward |", "|---|---|---|---|---|"]
    forward = {r["batch"]: r["images_per_s"] for r in rows if r["path"].startswith("forward")}
    for r in rows:
        share = r["images_per_s"] / forward[r["batch"]]
        lines.append(
            f"| {r['path']} | {r['batch']} | {r['images_per_s']:.1f} | "
            f"{r['ms_per_request']:.1f} | {share:.0%} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="timed seconds per point")
    parser.add_argument("--rounds", type=int, default=4, help="turns the paths take per point")
    parser.add_argument(
        "--no-transport", action="store_true", help="skip the no-compute model's section"
    )
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="ORT intra-op")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "grpc_detect.json")
    args = parser.parse_args()

    load_before = os.getloadavg()
    jpegs, source = load_images(max(args.batches))
    batch = max(args.batches)
    sections = {}
    with tempfile.TemporaryDirectory(prefix="heron-bench-grpc-detect-") as tmp:
        work = Path(tmp)
        models = {"facemask": FACEMASK / "model.onnx"}
        if not args.no_transport:
            models["transport_only"] = transport_model(work / "transport_only.onnx")
        for label, onnx in models.items():
            service = start_service(write_config(work, batch, onnx), args.threads, batch)
            try:
                info = service.backend.model_info()
                print(f"{label} ({info.name} {info.version}), ORT {args.threads} threads:")
                rows = measure(service, jpegs, args.batches, args.seconds, args.rounds)
            finally:
                service.close()
            sections[label] = rows
            print()
            print(table(rows))
            print()
    result = {
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1m_before_after": [
                round(load_before[0], 2),
                round(os.getloadavg()[0], 2),
            ],
        },
        "models": {
            "facemask": "models/facemask/model.onnx (fp32, 3x544x960, stride 8)",
            "transport_only": "8x8 average pool + zeroed 1x1 heads, same tensors (no compute)",
        },
        "images": source,
        "ort_intra_op_threads": args.threads,
        "seconds_per_point": args.seconds,
        "rounds": args.rounds,
        "ort_spin_wait": False,
        "rows": sections,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}")


if __name__ == "__main__":
    main()
