"""Benchmark: FP32 vs INT8 — per-class AP, CPU latency (ONNX Runtime) and engine builds.

    .venv/bin/python bench/int8.py                      # models/facemask/model.onnx if present
    .venv/bin/python bench/int8.py --model M.onnx --batches 40

For the model (an export of `heron export`, or — when none is given and models/facemask/ has no
model.onnx — heron.training's DetectNet_v2 ResNet-18 with RANDOM weights at 960×544, said so in
the output): `heron calibrate` (entropy) on the facemask images; per-class AP of FP32, the
TensorRT Q/DQ (S8S8) and the CPU (U8S8) models on a held-out KITTI conversion of the facemask
images (--eval-images of the validation 20 % that bench/train_facemask.py holds out); ONNX
Runtime latency at batch 1 with 2 threads; TensorRT-RTX build time and plan size for FP32,
FP16 and INT8 (targets sm86, sm89). Writes --out (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "facemask-kaggle"
TRAINED = REPO / "models" / "facemask" / "model.onnx"
CLASS_MAP = {"with_mask": "mask", "without_mask": "no-mask", "mask_weared_incorrect": "no-mask"}
# The committed model's classes (the reference mapping of `heron data convert`).
TRAINED_CLASS_MAP = {
    "with_mask": "Mask",
    "without_mask": "No-Mask",
    "mask_weared_incorrect": "No-Mask",
}


def random_model(path: Path) -> Path:
    """DetectNet_v2 ResNet-18, 960×544, random weights, exported as `heron export` does."""
    import onnx
    import torch
    from heron.training.model import BBOX_NAME, COV_NAME, INPUT_NAME, DetectNetV2
    from heron.training.predict import SETTINGS_METADATA_KEY, settings_json
    from heron.training.settings import ModelSettings, TrainingSettings

    settings = TrainingSettings(
        classes=("mask", "no-mask"), model=ModelSettings(), class_mapping=CLASS_MAP
    )
    torch.manual_seed(0)
    model = DetectNetV2(settings.model, 2).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.rand(1, 3, 544, 960),),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[COV_NAME, BBOX_NAME],
            dynamic_axes={INPUT_NAME: {0: "b"}, COV_NAME: {0: "b"}, BBOX_NAME: {0: "b"}},
            opset_version=17,
            dynamo=False,
        )
    proto = onnx.load(str(path))
    proto.metadata_props.add(key=SETTINGS_METADATA_KEY, value=settings_json(settings))
    onnx.save(proto, str(path))
    return path


def eval_folder(root: Path, count: int, class_map: dict[str, str]) -> Path:
    """Up to `count` images of the validation 20 % (seed 42, as bench/train_facemask.py splits,
    so a trained model is scored on images it never saw) as a KITTI folder at 960×544."""
    from heron.training.data.convert import convert_samples
    from heron.training.data.split import partition_random
    from heron.training.data.voc import from_voc

    samples = list(from_voc(DATA / "annotations", DATA / "images"))
    validation, _ = partition_random(sorted(s.name for s in samples), 20.0, 42)
    held_out = set(validation[:count])
    kitti = root / "eval-kitti"
    convert_samples(
        [s for s in samples if s.name in held_out], kitti, class_map=class_map, size=(960, 544)
    )
    return kitti


def latency_ms(model: Path, runs: int) -> float:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    x = np.random.default_rng(0).random((1, 3, 544, 960), dtype=np.float32)
    session.run(None, {name: x})  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, {name: x})
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def builds(fp32: Path, qdq: Path, calib: Path, root: Path) -> list[dict[str, Any]]:
    from heron.engine.build import BuildOptions, build_plan, get_builder
    from heron.engine.errors import BuilderUnavailableError

    out = []
    for precision, source in (("fp32", fp32), ("fp16", fp32), ("int8", qdq)):
        options = BuildOptions(
            onnx=source,
            precision=precision,
            calib_cache=calib if precision == "int8" else None,
            targets=["sm86", "sm89"],
        )
        try:
            built = build_plan(options, get_builder("tensorrt_rtx"))
        except BuilderUnavailableError as e:
            return [{"skipped": str(e)}]
        meta = built.metadata
        out.append(
            {
                "precision": precision,
                "builder": f"tensorrt_rtx {meta.trt_version}",
                "targets": meta.targets,
                "build_s": meta.build_seconds,
                "plan_mb": round(meta.plan_bytes / 1e6, 2),
            }
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--eval-images", type=int, default=100)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "int8.json")
    args = parser.parse_args()
    from heron.engine.calibrate import CalibrationOptions, Method
    from heron.engine.pipeline import calibrate_and_compare

    if not DATA.is_dir():
        print(f"{DATA} is absent: the benchmark needs the facemask images", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="heron-int8-") as tmp:
        root = Path(tmp)
        model = args.model or (TRAINED if TRAINED.is_file() else None)
        weights = "trained" if model else "random (no models/facemask/model.onnx)"
        # The random model maps raw VOC names itself; the trained one expects its classes.
        labels = TRAINED_CLASS_MAP if model else {k: k for k in CLASS_MAP}
        model = model or random_model(root / "random.onnx")
        options = CalibrationOptions(
            images=DATA / "images",
            batches=args.batches,
            batch_size=args.batch_size,
            method=Method.ENTROPY,
        )
        outcome = calibrate_and_compare(
            model, root / "calib", options, eval_folder(root, args.eval_images, labels)
        )
        c = outcome.calibration
        result = {
            "machine": f"{platform.processor() or platform.machine()}, 2 ORT threads",
            "model": str(model),
            "weights": weights,
            "calibration": {
                "images": c.images,
                "method": "entropy",
                "seconds": round(c.seconds, 1),
            },
            "eval_images": args.eval_images,
            "accuracy": [r.to_dict() for r in outcome.reports],
            "latency_ms_bs1": {
                "fp32": latency_ms(model, args.runs),
                "int8_s8s8_qdq": latency_ms(c.qdq_model, args.runs),
                "int8_u8s8": latency_ms(c.cpu_model, args.runs),
            },
            "builds": builds(model, c.qdq_model, c.cache, root),
            # Other work on the machine inflates latencies: the 1-minute load when measured.
            "load_average_1m": os.getloadavg()[0],
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
