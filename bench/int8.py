"""Benchmark: FP32 vs INT8 — per-class AP, CPU latency (ONNX Runtime) and engine builds.

    .venv/bin/python bench/int8.py                      # models/facemask/model.onnx if present
    .venv/bin/python bench/int8.py --model M.onnx --batches 40

For the model (an export of `heron export`, or — when none is given and models/facemask/ has no
model.onnx — heron.training's DetectNet_v2 ResNet-18 with RANDOM weights at 960×544, said so in
the output): `heron calibrate` with its defaults (entropy, `--keep-fp auto`) on images of the
training 80 % only; then, from one more histogram pass over the same images, the symmetric
TensorRT Q/DQ model with other methods (percentile 99.99 / 99.999, minmax) and with nothing kept
in float. Per-class AP of every variant on a held-out KITTI conversion of the facemask images
(--eval-images of the validation 20 % that bench/train_facemask.py holds out); ONNX Runtime
latency at batch 1 with 2 threads; TensorRT-RTX build time and plan size for FP32, FP16 and
INT8 (targets sm86, sm89). Writes --out (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
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
    from heron.core.model_metadata import SETTINGS_METADATA_KEY
    from heron.training.model import BBOX_NAME, COV_NAME, INPUT_NAME, DetectNetV2
    from heron.training.predict import settings_json
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


def split_names() -> tuple[list[str], list[str]]:
    """(validation, training) image names: bench/train_facemask.py's split (seed 42, 20 %)."""
    from heron.training.data.split import partition_random

    names = sorted(p.stem for p in (DATA / "images").iterdir())
    validation, training = partition_random(names, 20.0, 42)
    return validation, training


def calibration_folder(root: Path) -> Path:
    """Links to the training-split images: calibration never sees an image AP is scored on."""
    folder = root / "calib-images"
    folder.mkdir()
    _, training = split_names()
    wanted = set(training)
    for image in (DATA / "images").iterdir():
        if image.stem in wanted:
            (folder / image.name).symlink_to(image)
    return folder


def eval_folder(root: Path, count: int, class_map: dict[str, str]) -> Path:
    """Up to `count` images of the validation 20 % (seed 42, as bench/train_facemask.py splits,
    so a trained model is scored on images it never saw) as a KITTI folder at 960×544."""
    from heron.training.data.convert import convert_samples
    from heron.training.data.voc import from_voc

    samples = list(from_voc(DATA / "annotations", DATA / "images"))
    validation, _ = split_names()
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


# Symmetric Q/DQ variants from the same histograms: (label, method, percentile, keep the layers
# `--keep-fp auto` chose?).
VARIANTS = (
    ("entropy, all INT8", "entropy", 0.0, False),
    ("percentile 99.99, all INT8", "percentile", 99.99, False),
    ("percentile 99.999, all INT8", "percentile", 99.999, False),
    ("minmax, all INT8", "minmax", 0.0, False),
    ("percentile 99.999, keep-fp auto", "percentile", 99.999, True),
)


def variants(
    model: Path, options: Any, *, kept: tuple[str, ...], fp32: Any, eval_data: Path, root: Path
) -> tuple[list[Any], dict[str, Path]]:
    """AP of each symmetric Q/DQ variant of VARIANTS; and their model files."""
    from heron.core.int8.qdq import QdqVariant, quantize, save_ranges
    from heron.engine.accuracy import compare
    from heron.engine.calibrate import collect_histograms
    from heron.engine.images import image_files
    from heron.engine.model_info import read_model_info

    paths = image_files(options.images)
    size = options.batch_size
    batches = [paths[i * size : (i + 1) * size] for i in range(options.batches)]
    collector = collect_histograms(model, read_model_info(model), batches)
    reports, files = [], {}
    for index, (label, method, percentile, keep) in enumerate(VARIANTS):
        amax = collector.amax(method, percentile)
        for output in read_model_info(model).outputs:  # as calibrate: outputs unclipped
            amax[output.name] = collector.histograms[output.name].amax
        ranges = save_ranges(collector.ranges(amax), root / f"ranges{index}.json")
        path = quantize(
            model,
            ranges,
            root / f"variant{index}.onnx",
            variant=QdqVariant.TENSORRT,
            note=label,
            keep_float=kept if keep else (),
        )
        reports.append(compare(fp32, path, eval_data, f"TensorRT Q/DQ (S8S8), {label}"))
        files[label] = path
    return reports, files


def builds(fp32: Path, qdq: Path, calib: Path, root: Path) -> list[dict[str, Any]]:
    from heron.engine.build import build_plan
    from heron.engine.builders import get_builder
    from heron.engine.errors import BuilderUnavailableError
    from heron.engine.options import BuildOptions

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
    parser.add_argument("--eval-images", type=int, default=138)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "int8.json")
    args = parser.parse_args()
    from heron.engine.accuracy import evaluate_ap
    from heron.engine.model_info import sha256_file
    from heron.engine.options import CalibrationOptions
    from heron.engine.pipeline import calibrate_and_compare

    if not DATA.is_dir():
        print(f"{DATA} is absent: the benchmark needs the facemask images", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="heron-int8-") as tmp:
        root = Path(tmp)
        source = args.model or (TRAINED if TRAINED.is_file() else None)
        weights = "trained" if source else "random (no models/facemask/model.onnx)"
        # A copy: the file may be replaced (a new training run) while this runs for minutes.
        model = Path(shutil.copy(source, root / "model.onnx")) if source else None
        # The random model maps raw VOC names itself; the trained one expects its classes.
        labels = TRAINED_CLASS_MAP if model else {k: k for k in CLASS_MAP}
        model = model or random_model(root / "random.onnx")
        options = CalibrationOptions(
            images=calibration_folder(root), batches=args.batches, batch_size=args.batch_size
        )
        eval_data = eval_folder(root, args.eval_images, labels)
        outcome = calibrate_and_compare(model, root / "calib", options, eval_data)
        c = outcome.calibration
        fp32 = evaluate_ap(model, eval_data)
        more, files = variants(
            model, options, kept=c.kept_float, fp32=fp32, eval_data=eval_data, root=root
        )
        result = {
            "machine": f"{platform.processor() or platform.machine()}, 2 ORT threads",
            "model": str(source or model),
            "model_sha256": sha256_file(model),
            "weights": weights,
            "calibration": {
                "images": c.images,
                "method": c.method.value,
                "seconds": round(c.seconds, 1),
                "kept_float": list(c.kept_float),
                "sensitivity": c.sensitivity.to_dict() if c.sensitivity else None,
            },
            "eval_images": args.eval_images,
            "accuracy": [r.to_dict() for r in outcome.reports + more],
            "latency_ms_bs1": {
                "fp32": latency_ms(model, args.runs),
                "int8_u8s8": latency_ms(c.cpu_model, args.runs),
                "int8_s8s8_qdq_keep_fp_auto": latency_ms(c.qdq_model, args.runs),
                "int8_s8s8_qdq_all_int8": latency_ms(files["entropy, all INT8"], args.runs),
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
