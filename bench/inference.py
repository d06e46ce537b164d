"""Benchmark: inference images/s by batch size — ONNX Runtime on this CPU, Triton gRPC vs shm.

    .venv/bin/python bench/inference.py
    .venv/bin/python bench/inference.py --seconds 2 --batches 1 4 --no-triton

Models (random weights, 3×544×960 input, exported like `heron export`): heron.training's
DetectNet_v2 with a ResNet-18 and with a MobileNetV2 backbone. For each, ONNX Runtime in-process
(the service's default backend) at each batch size. Then Triton (the nvidia-pytriton wheel's
tritonserver, python backend running ONNX Runtime) through the service's Triton backend, over
plain gRPC and with system shared-memory inputs, for the MobileNetV2 detector and for a
transport-bound model (16×16 average pool + 1×1 heads: nearly no compute, so what is measured
is moving a 6 MB batch in and the grids out). Prints a table and writes --out (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.support: the Triton launcher the tests use

H, W = 544, 960
COV, BBOX, INPUT = "output_cov/Sigmoid", "output_bbox/BiasAdd", "input_1"


def export(model: Any, path: Path) -> Path:
    import torch

    torch.onnx.export(
        model.eval(),
        (torch.zeros(1, 3, H, W),),
        str(path),
        input_names=[INPUT],
        output_names=[COV, BBOX],
        dynamic_axes={INPUT: {0: "batch"}, COV: {0: "batch"}, BBOX: {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    return path


def detectnet(arch: str, layers: int) -> Any:
    from heron.training.model import DetectNetV2
    from heron.training.settings import ModelSettings

    return DetectNetV2(ModelSettings(arch=arch, num_layers=layers), num_classes=2)  # type: ignore[arg-type]


def transport_model() -> Any:
    import torch
    from torch import nn

    class Transport(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pool = nn.AvgPool2d(16)
            self.cov = nn.Conv2d(3, 2, 1)
            self.bbox = nn.Conv2d(3, 8, 1)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            f = self.pool(x)
            return torch.sigmoid(self.cov(f)), self.bbox(f)

    return Transport()


def rate(infer: Any, batch: int, seconds: float) -> dict[str, float]:
    x = np.random.default_rng(batch).random((batch, 3, H, W), dtype=np.float32)
    infer(x)  # warm-up
    infer(x)
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or calls < 2:
        infer(x)
        calls += 1
    return {
        "images_per_s": round(calls * batch / elapsed, 2),
        "ms_per_batch": round(1000 * elapsed / calls, 2),
        "calls": calls,
    }


def bench_ort(
    models: dict[str, Path], batches: list[int], seconds: float, threads: int
) -> list[Any]:
    from heron.inference.backends.onnx_runtime import OnnxRuntimeBackend

    rows = []
    for name, path in models.items():
        backend = OnnxRuntimeBackend(path, intra_op_threads=threads)
        for b in batches:
            r = rate(backend.infer, b, seconds)
            rows.append({"backend": "onnxruntime", "model": name, "batch": b, **r})
            print(f"  onnxruntime  {name:<22} bs{b:<3} {r['images_per_s']:8.1f} img/s", flush=True)
        backend.close()
    return rows


def bench_triton(
    models: dict[str, Path], batches: list[int], seconds: float, work: Path
) -> list[Any]:
    from heron.core.plan.settings.inference import TritonSettings
    from heron.inference.backends.triton_grpc import TritonBackend

    from tests.support.triton_server import TritonServer, find_triton, write_onnx_model

    install = find_triton()
    repository = work / "models"
    for name, path in models.items():
        write_onnx_model(
            repository,
            name,
            path,
            input_name=INPUT,
            input_dims=(3, H, W),
            outputs={COV: (2, H // 16, W // 16), BBOX: (8, H // 16, W // 16)},
            max_batch_size=max(batches),
        )
    server = TritonServer(repository, work, install)
    server.start(timeout=120)
    rows = []
    try:
        for name in models:
            for shm in (False, True):
                settings = TritonSettings(url=server.grpc_url, model_name=name, shared_memory=shm)
                backend = TritonBackend(settings)
                backend.connect()
                transport = "shared memory" if shm else "gRPC"
                for b in batches:
                    r = rate(backend.infer, b, seconds)
                    rows.append({"backend": f"triton {transport}", "model": name, "batch": b, **r})
                    print(
                        f"  triton {transport:<13} {name:<22} bs{b:<3} "
                        f"{r['images_per_s']:8.1f} img/s",
                        flush=True,
                    )
                backend.close()
    finally:
        server.stop()
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| backend | model | batch | images/s | ms/batch |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['backend']} | {r['model']} | {r['batch']} | {r['images_per_s']:.1f} | "
        f"{r['ms_per_batch']:.1f} |"
        for r in rows
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per point")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="ORT intra-op")
    parser.add_argument("--no-triton", action="store_true", help="skip the Triton runs")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "inference.json")
    args = parser.parse_args()

    import torch

    torch.manual_seed(0)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="heron-bench-inference-") as tmp:
        work = Path(tmp)
        models = {
            "detectnet_resnet18": export(detectnet("resnet", 18), work / "resnet18.onnx"),
            "detectnet_mobilenet_v2": export(detectnet("mobilenet_v2", 0), work / "mnv2.onnx"),
        }
        print(f"ONNX Runtime, {args.threads} intra-op threads, 3x{H}x{W}:")
        rows = bench_ort(models, args.batches, args.seconds, args.threads)
        triton_note = "skipped (--no-triton)"
        if not args.no_triton:
            triton_models = {
                "detectnet_mobilenet_v2": models["detectnet_mobilenet_v2"],
                "transport_only": export(transport_model(), work / "transport.onnx"),
            }
            print("Triton (python backend running ONNX Runtime, 1 instance):")
            try:
                rows += bench_triton(triton_models, args.batches, args.seconds, work / "triton")
                triton_note = "nvidia-pytriton 0.7.0 tritonserver 2.51, python backend + ORT"
            except FileNotFoundError as e:  # the pytriton wheel is not installed
                triton_note = f"skipped: {e}"
                print(triton_note)
    print()
    print(table(rows))
    result = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            # Other work on the machine skews every number: record how busy it was.
            "load_average_1m_before_after": [
                round(load_before[0], 2),
                round(os.getloadavg()[0], 2),
            ],
        },
        "input": [3, H, W],
        "weights": "random (heron.training.model.DetectNetV2, no pretrained weights)",
        "ort_intra_op_threads": args.threads,
        "seconds_per_point": args.seconds,
        "triton": triton_note,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
