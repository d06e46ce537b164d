"""Benchmark: FP32 vs INT8 on images in three roles — calibration time, per-class AP on the
select and gate images, CPU latency (ONNX Runtime) and engine builds.

    .venv/bin/python bench/int8.py                      # models/facemask/model.onnx if present
    .venv/bin/python bench/int8.py --calib-images 80    # a reduced calibration set

The facemask images are split into roles once (heron.evaluation.roles, seed 42): `train` (the
553 images the model was trained on: calibration takes the first --calib-images of them by
name, all by default: 69 batches of 8), `select` (69 held-out images: `--method auto` chooses
its method on them) and `gate` (the other 69 held-out images: the gate and every reported
number). Nothing is chosen on the gate images: they score the method `auto` chose, and, for
the record only, every candidate method, so the page can say which default would have held.

For the model (an export of `heron export`, or — when none is given and models/facemask/ has no
model.onnx — heron.training's DetectNet_v2 ResNet-18 with RANDOM weights at 960×544, said so in
the output): `heron calibrate --method auto` (histograms, the search on select, both INT8
forms) through heron.engine.pipeline, timed in wall and CPU seconds with the load average;
each candidate method's two INT8 forms scored on the gate images; ONNX Runtime latency at
batch 1 with 2 threads; TensorRT-RTX build time and plan size for FP32, FP16 and INT8
(targets sm86, sm89). Writes --out (JSON), with every image set's role, count and names hash.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
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


def roles() -> Any:
    """train / select / gate of the facemask images: training's hold-out (seed 42, 20 %), its
    held-out half select, half gate (heron.evaluation.roles)."""
    from heron.evaluation.roles import split_roles

    return split_roles(p.stem for p in (DATA / "images").iterdir())


def calibration_folder(root: Path, names: tuple[str, ...], count: int | None) -> Path:
    """Links to the first `count` training images by name (all when None), under their names:
    heron calibrate takes a folder's images in name order."""
    folder = root / "calib-images"
    folder.mkdir()
    for name in sorted(names)[:count]:
        (folder / f"{name}.jpg").symlink_to(DATA / "images" / f"{name}.jpg")
    return folder


def kitti_folder(root: Path, role: str, names: tuple[str, ...], class_map: dict[str, str]) -> Path:
    """`names` as a KITTI folder at 960×544 (the network's input size)."""
    from heron.training.data.convert import convert_samples
    from heron.training.data.voc import from_voc

    wanted = set(names)
    samples = [s for s in from_voc(DATA / "annotations", DATA / "images") if s.name in wanted]
    kitti = root / f"{role}-kitti"
    convert_samples(samples, kitti, class_map=class_map, size=(960, 544))
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


def every_candidate_on(model: Path, result: Any, data: Path, root: Path) -> list[Any]:
    """Each candidate method's two INT8 forms, from the calibration's histograms, on `data`:
    for the record (the gate images), never to choose."""
    from heron.engine.accuracy import evaluate_ap
    from heron.engine.calibrate import quantise_recipe
    from heron.engine.model_info import read_model_info
    from heron.engine.search import CANDIDATES, score_recipe

    info = read_model_info(model)
    fp32 = evaluate_ap(model, data)
    scores = []
    for index, recipe in enumerate(CANDIDATES):
        folder = root / f"gate-candidate{index}"
        folder.mkdir()

        def quantise(r: Any, f: Path) -> tuple[Path, Path]:
            return quantise_recipe(model, info, result.histograms, r, f, note=r.label)

        scores.append(score_recipe(recipe, quantise, fp32, data, folder))
        print(f"gate, {recipe.label}: {scores[-1].to_dict()['mAP_drop']}", flush=True)
    return scores


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


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
    parser.add_argument("--calib-images", type=int, default=None, help="Default: all (552).")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--no-builds", action="store_true", help="Skip the TensorRT-RTX builds.")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "int8.json")
    args = parser.parse_args()
    from heron.engine.model_info import sha256_file
    from heron.engine.options import CalibrationOptions
    from heron.engine.pipeline import calibrate_and_compare

    if not DATA.is_dir():
        print(f"{DATA} is absent: the benchmark needs the facemask images", file=sys.stderr)
        return 1
    split = roles()
    with tempfile.TemporaryDirectory(prefix="heron-int8-") as tmp:
        root = Path(tmp)
        source = args.model or (TRAINED if TRAINED.is_file() else None)
        weights = "trained" if source else "random (no models/facemask/model.onnx)"
        # A copy: the file may be replaced (a new training run) while this runs for minutes.
        model = Path(shutil.copy(source, root / "model.onnx")) if source else None
        # The random model maps raw VOC names itself; the trained one expects its classes.
        labels = TRAINED_CLASS_MAP if model else {k: k for k in CLASS_MAP}
        model = model or random_model(root / "random.onnx")
        select = kitti_folder(root, "select", split.select.names, labels)
        gate = kitti_folder(root, "gate", split.gate.names, labels)
        options = CalibrationOptions(
            images=calibration_folder(root, split.train.names, args.calib_images),
            batch_size=args.batch_size,
            select_data=select,
        )
        load_before, cpu_before, started = os.getloadavg(), cpu_seconds(), time.perf_counter()
        outcome = calibrate_and_compare(
            model,
            root / "calib",
            options,
            gate,
            on_stage=lambda stage: print(stage, flush=True),
            on_candidate=lambda _d, _t, text: print(f"select, {text}", flush=True),
        )
        wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu_before
        c = outcome.calibration
        on_gate = every_candidate_on(model, c, gate, root)
        result = {
            "date": datetime.date.today().isoformat(),
            "machine": f"{cpu_name()}, {os.cpu_count()} cores, 2 ORT threads",
            "load_average_at_start": load_before,
            "model": str(source or model),
            "model_sha256": sha256_file(model),
            "weights": weights,
            "image_sets": [s.fingerprint() for s in (split.train, *outcome.image_sets)],
            "calibration": {
                "images": c.images,
                "method": c.recipe.label,
                "histogram_s": round(c.histogram_seconds, 1),
                "calibrate_s": round(c.seconds, 1),  # histograms + search + both models
                "with_gate_scoring_s": round(wall, 1),
                "cpu_s": round(cpu, 1),
                "kept_float": list(c.kept_float),
            },
            "search_on_select": c.search.to_dict() if c.search else None,
            "candidates_on_gate": [s.to_dict() for s in on_gate],
            "accuracy_on_gate": [r.to_dict() for r in outcome.reports],
            "latency_ms_bs1": {
                "fp32": latency_ms(model, args.runs),
                "int8_u8s8": latency_ms(c.cpu_model, args.runs),
                "int8_s8s8_qdq": latency_ms(c.qdq_model, args.runs),
            },
            "builds": [] if args.no_builds else builds(model, c.qdq_model, c.cache, root),
            # Other work on the machine inflates times: the 1-minute load when done.
            "load_average_1m": os.getloadavg()[0],
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
