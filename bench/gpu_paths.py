"""Benchmark the GPU paths of ingest and inference: NVDEC decoding and the PyTorch CUDA backend.

    .venv/bin/python bench/gpu_paths.py prepare --work .device/gpu        # here, on the CPU
    PYTHONPATH=services python3 bench/gpu_paths.py run --work .device/gpu  # on the GPU machine

`prepare` makes the clips (FFmpeg's testsrc2 in H.264 and HEVC at 540p and 1080p, plus the real
Face_Mask_Video.mp4 when ../shared has it) and decodes each with the CPU decoder ingest uses
(PyAV), keeping frame counts and 64×36 thumbnails of some frames as the reference. The GPU
machine has no FFmpeg, so the clips and the reference travel with the checkout.

`run` decodes every clip through `heron.ingest`'s NVDEC decoder (PyNvVideoCodec, NV12 → BGR on
the host, exactly what the ingest service gets): frames/s, frame count and thumbnail difference
against the CPU reference, then several streams at once. Then it exports the committed model
to a `torch.export` program (`heron export -o model.pt2`) and runs it through the inference
service's PyTorch backend (host batch in, host grids out: copies included) in fp32, fp16,
fp16 + torch.compile and fp16 + compile + CUDA graphs, by batch size, and compares the grids
with ONNX Runtime (CPU, fp32) of the committed ONNX on real frames. Prints tables and writes
--out (JSON).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from heron.core.media_uri import parse_uri
from heron.core.plan.settings.ingest import DecoderKind
from heron.ingest.decoders import decoder_for
from heron.ingest.decoding import OpenRequest

REPO = Path(__file__).resolve().parents[1]
REAL_CLIP = REPO.parent / "shared" / "data" / "videos" / "Face_Mask_Video.mp4"
MODEL = REPO / "models" / "facemask"
CLIPS = (("h264", "540p"), ("hevc", "540p"), ("h264", "1080p"), ("hevc", "1080p"))
THUMB = (64, 36)
COV, BBOX = "output_cov/Sigmoid", "output_bbox/BiasAdd"


def thumbnails(frames: list[np.ndarray]) -> np.ndarray:
    import cv2

    return np.stack([cv2.resize(f, THUMB, interpolation=cv2.INTER_AREA) for f in frames])


def decode_all(clip: Path, decoder: DecoderKind) -> list[np.ndarray]:
    request = OpenRequest(parse_uri(str(clip)), threads=0)
    return [frame.image for frame in decoder_for(decoder).frames(request)]


def sample_indices(count: int) -> list[int]:
    return sorted({0, count // 2, count - 1})


def prepare(work: Path, frames: int) -> None:
    from ingest import RESOLUTIONS, make_clip  # bench/ingest.py: the same clips

    work.mkdir(parents=True, exist_ok=True)
    clips: list[Path] = []
    for codec, resolution in CLIPS:
        width, height = RESOLUTIONS[resolution]
        clip = work / f"{codec}-{resolution}.mp4"
        if make_clip(clip, codec, width, height, frames):
            clips.append(clip)
    if REAL_CLIP.is_file():
        shutil.copy(REAL_CLIP, work / REAL_CLIP.name)
        clips.append(work / REAL_CLIP.name)
    reference: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    for clip in clips:
        decoded = decode_all(clip, DecoderKind.CPU)
        picks = sample_indices(len(decoded))
        reference[clip.name] = {"frames": len(decoded), "samples": picks}
        arrays[clip.name] = thumbnails([decoded[i] for i in picks])
        print(f"{clip.name}: {len(decoded)} frames")
    (work / "reference.json").write_text(json.dumps(reference, indent=2) + "\n")
    np.savez_compressed(work / "reference.npz", allow_pickle=False, **arrays)


def nvdec_rows(work: Path, repeats: int) -> list[dict[str, Any]]:
    reference = json.loads((work / "reference.json").read_text())
    thumbs = np.load(work / "reference.npz")
    rows = []
    for name, ref in reference.items():
        runs, decoded = [], []
        for _ in range(repeats):
            started = time.perf_counter()
            decoded = decode_all(work / name, DecoderKind.NVDEC)
            runs.append(time.perf_counter() - started)
        seconds = min(runs)
        row: dict[str, Any] = {"clip": name, "frames": len(decoded), "cpu_frames": ref["frames"]}
        row.update(fps=len(decoded) / seconds, seconds=seconds)
        if len(decoded) == ref["frames"]:
            diff = np.abs(
                thumbnails([decoded[i] for i in ref["samples"]]).astype(np.int16)
                - thumbs[name].astype(np.int16)
            )
            row.update(thumb_max_diff=int(diff.max()), thumb_mean_diff=float(diff.mean()))
        rows.append(row)
    return rows


def nvdec_streams(clip: Path, streams: int) -> dict[str, Any]:
    """Aggregate frames/s of `streams` decoders, one thread each, on the same GPU."""
    counts = [0] * streams

    def worker(index: int) -> None:
        counts[index] = len(decode_all(clip, DecoderKind.NVDEC))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(streams)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    return {"clip": clip.name, "streams": streams, "frames": sum(counts),
            "fps": sum(counts) / seconds}  # fmt: skip


def real_batch(work: Path, size: tuple[int, int], count: int) -> np.ndarray:
    """`count` frames of the real clip (or the 540p clip), RGB [0, 1] at the model's size."""
    import cv2

    clip = work / REAL_CLIP.name
    if not clip.is_file():
        clip = work / "h264-540p.mp4"
    frames = decode_all(clip, DecoderKind.NVDEC)
    picks = np.linspace(0, len(frames) - 1, count).astype(int)
    width, height = size
    rgb = [cv2.cvtColor(cv2.resize(frames[i], (width, height)), cv2.COLOR_BGR2RGB) for i in picks]
    return np.ascontiguousarray(np.stack(rgb).transpose(0, 3, 1, 2), np.float32) / 255.0


def torch_rows(work: Path, batches: list[int], seconds: float) -> list[dict[str, Any]]:
    import onnxruntime as ort
    import torch
    from heron.inference.backends.base import ModelInfo
    from heron.inference.backends.torch_cuda import TorchBackend
    from heron.training.export import export_program

    program = work / "model.pt2"
    export_program(MODEL / "model.pt", program)
    module = torch.export.load(str(program)).module()
    session = ort.InferenceSession(str(MODEL / "model.onnx"), providers=["CPUExecutionProvider"])
    shape = session.get_inputs()[0].shape
    height, width = int(shape[2]), int(shape[3])
    info = ModelInfo("facemask", "1", "input_1", (3, height, width), (COV, BBOX), 0)
    images = real_batch(work, (width, height), 8)
    reference = dict(zip((COV, BBOX), session.run([COV, BBOX], {"input_1": images}), strict=True))
    configs = {
        "fp32": {"fp16": False, "compile": False, "cuda_graphs": False},
        "fp16": {"fp16": True, "compile": False, "cuda_graphs": False},
        "fp16+compile": {"fp16": True, "compile": True, "cuda_graphs": False},
        "fp16+compile+graphs": {"fp16": True, "compile": True, "cuda_graphs": True},
    }
    rows = []
    for name, options in configs.items():
        backend = TorchBackend(module, info, device="cuda", **options)
        started = time.perf_counter()
        out = backend.infer(images)  # the first call compiles / captures
        first = time.perf_counter() - started
        diff = {k: float(np.abs(out[k] - reference[k]).max()) for k in (COV, BBOX)}
        agree = float(((out[COV] > 0.5) == (reference[COV] > 0.5)).mean())
        for batch in batches:
            x = np.ascontiguousarray(np.resize(images, (batch, *images.shape[1:])))
            for _ in range(3):
                backend.infer(x)
            done, started = 0, time.perf_counter()
            while time.perf_counter() - started < seconds:
                backend.infer(x)
                done += batch
            rate = done / (time.perf_counter() - started)
            rows.append({"config": name, "batch": batch, "images_per_s": rate,
                         "first_call_s": first, "max_diff_cov": diff[COV],
                         "max_diff_bbox": diff[BBOX], "cov_cells_agree": agree})  # fmt: skip
        backend.close()
        torch.cuda.empty_cache()
    return rows


def run(work: Path, out: Path, repeats: int, batches: list[int], seconds: float) -> None:
    import torch
    from rich.console import Console
    from rich.table import Table

    console = Console()
    decode = nvdec_rows(work, repeats)
    table = Table(title=f"NVDEC decode to BGR (host), best of {repeats}")
    for column in ("clip", "frames", "CPU frames", "fps", "thumb max/mean diff"):
        table.add_column(column, justify="right")
    for r in decode:
        diff = f"{r.get('thumb_max_diff', '-')}/{r.get('thumb_mean_diff', float('nan')):.2f}"
        table.add_row(r["clip"], str(r["frames"]), str(r["cpu_frames"]), f"{r['fps']:.0f}", diff)
    console.print(table)
    streams = [nvdec_streams(work / "h264-1080p.mp4", n) for n in (1, 4, 8)]
    for s in streams:
        console.print(f"NVDEC {s['streams']} streams of {s['clip']}: {s['fps']:.0f} frames/s")
    inference = torch_rows(work, batches, seconds)
    table = Table(title="PyTorch CUDA backend (host in, host out), committed model")
    for column in ("config", "batch", "images/s", "first call s", "max |Δcov|", "cells agree"):
        table.add_column(column, justify="right")
    for r in inference:
        table.add_row(r["config"], str(r["batch"]), f"{r['images_per_s']:.0f}",
                      f"{r['first_call_s']:.1f}", f"{r['max_diff_cov']:.2g}",
                      f"{r['cov_cells_agree']:.5f}")  # fmt: skip
    console.print(table)
    machine = {"platform": platform.platform(), "gpu": torch.cuda.get_device_name(0),
               "torch": torch.__version__}  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"machine": machine, "nvdec": decode, "nvdec_streams": streams,
               "torch_backend": inference}  # fmt: skip
    out.write_text(json.dumps(payload, indent=2) + "\n")
    console.print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=["prepare", "run"])
    parser.add_argument("--work", type=Path, default=REPO / ".device" / "gpu")
    parser.add_argument("--frames", type=int, default=300, help="frames per generated clip")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--seconds", type=float, default=2.0, help="timed seconds per point")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "gpu_paths.json")
    args = parser.parse_args()
    if args.step == "prepare":
        prepare(args.work, args.frames)
    else:
        run(args.work, args.out, args.repeats, args.batches, args.seconds)


if __name__ == "__main__":
    main()
