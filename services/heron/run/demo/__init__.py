"""`heron demo` (what `make demo` runs): the face-mask pipeline on real faces.

The clip: `--video`, else ../shared/data/videos/Face_Mask_Video.mp4 beside the checkout, else a
pan-and-zoom clip made from public-domain photos that installed packages ship (`clip.py`). The
model: see `model.py`. The pipeline is `demo_app.txt` in this folder; the demo writes a copy
(YAML form) with the clip, model and output paths it chose into the results folder and runs it
with `heron run`: an annotated MP4, RTSP at rtsp://127.0.0.1:8554/ds-test while it runs, and
deepstream-app perf lines.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from heron.run.demo.model import SPEC_NAME, DemoModel
from heron.run.demo.model import DemoError as DemoError  # re-exported: callers catch it here

HERE = Path(__file__).resolve().parent
APP_CONFIG = HERE / "demo_app.txt"
OUTPUT_NAME = "facemask_annotated.mp4"


def repo_root() -> Path:
    """The checkout this package runs from (an editable install), else the working folder."""
    root = HERE.parents[3]
    return root if (root / "pyproject.toml").is_file() else Path.cwd()


def shared_data() -> Path:
    return repo_root().parent / "shared" / "data"


def choose_clip(video: Path | None, work: Path, out: Callable[[str], None]) -> Path:
    if video is not None:
        if not video.is_file():
            raise DemoError(f"--video {video}: no such file")
        return video.resolve()
    real = shared_data() / "videos" / "Face_Mask_Video.mp4"
    if real.is_file():
        out(f"clip: {real} (real masked and unmasked faces)")
        return real
    return _photo_clip(real, work, out)


def _photo_clip(real: Path, work: Path, out: Callable[[str], None]) -> Path:
    """A clip of masked and bare faces made from the group photo; Grace Hopper without it."""
    from heron.run.demo.clip import (
        PhotoUnavailableError,
        available_photos,
        make_photo_clip,
        masked_group_photo,
    )

    absent = f"clip: {real} is absent (a fresh clone has no ../shared)"
    try:
        photo = masked_group_photo()
    except PhotoUnavailableError as e:
        out(
            f"{absent}; warning: {e}. Falling back to matplotlib's grace_hopper.jpg, on which "
            "the face-mask detector finds no face: expect no boxes"
        )
        photos = available_photos()
    else:
        masked, bare = photo.faces
        out(f"{absent}; making one from {photo.credit}: {masked} masked and {bare} bare faces")
        photos = [photo]
    return make_photo_clip(work / "faces_from_photos.mp4", photos=photos)


def choose_model(work: Path, train_minutes: float, out: Callable[[str], None]) -> DemoModel:
    from heron.run.demo import model as models

    committed = models.committed_model(repo_root() / "models")
    recipe = repo_root() / "models" / "facemask" / SPEC_NAME
    if committed is not None:
        out(f"model: {committed.onnx} ({committed.note})")
        return committed
    out(
        "model: no trained face-mask model is committed (no models/facemask/*.onnx), so the "
        f"demo trains a short one first from the committed recipe {recipe}"
    )
    data = shared_data() / "facemask-kaggle"
    if (data / "annotations").is_dir():
        trained = models.train_short(data, recipe, work / "training", train_minutes * 60, out)
        out(f"model: {trained.onnx} ({trained.note})")
        return trained
    out(
        f"warning: {data} is absent too: nothing to train on. Running with an UNTRAINED "
        "network (ImageNet backbone, random heads): the pipeline runs end to end but its boxes "
        "mean nothing. Commit models/facemask/model.onnx or provide the data for real results."
    )
    return models.untrained(recipe, work / "untrained")


def write_config(folder: Path, clip: Path, model: DemoModel, output: Path, rtsp_port: int) -> Path:
    """The demo pipeline with this run's clip, model, output file and RTSP port, as YAML."""
    from heron.core.config.deepstream import read_deepstream_app
    from heron.core.config.models import Pipeline
    from heron.core.config.nvinfer_models import NetworkMode
    from heron.core.config.yaml_loader import to_yaml

    pipeline, _ = read_deepstream_app(APP_CONFIG)
    data: dict[str, Any] = pipeline.model_dump()
    data["sources"][0]["uri"] = clip.as_uri()
    for sink in data["sinks"].values():
        if sink["type"] == "file":
            sink["output_file"] = output
        if sink["type"] == "rtsp":
            sink["rtsp_port"] = rtsp_port
    nvinfer = data["primary_gie"]["nvinfer"]
    nvinfer["property"]["onnx_file"] = model.onnx
    if model.calibration is not None:
        nvinfer["property"]["network_mode"] = NetworkMode.INT8
        nvinfer["property"]["int8_calib_file"] = model.calibration
    for attrs in nvinfer["class_attrs"].values():
        attrs["pre_cluster_threshold"] = model.threshold
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "demo_app.yaml"
    path.write_text(to_yaml(Pipeline.model_validate(data)), encoding="utf-8")
    return path


def run_demo(
    *,
    results_dir: Path,
    video: Path | None,
    model: Path | None = None,
    rtsp_port: int,
    train_minutes: float,
    out: Callable[[str], None],
) -> int:
    from heron.run.options import RunOptions
    from heron.run.plan import has_main
    from heron.run.runner import RunRequest, run_pipeline

    started = time.monotonic()
    results_dir.mkdir(parents=True, exist_ok=True)
    clip = choose_clip(video, results_dir / "input", out)
    if model is not None:
        if not model.is_file():
            raise DemoError(f"--model {model}: no such file")
        chosen = DemoModel(model.resolve(), "given", f"--model {model}", threshold=0.3)
    else:
        chosen = choose_model(results_dir, train_minutes, out)
    output = results_dir / OUTPUT_NAME
    output.unlink(missing_ok=True)
    config = write_config(results_dir / "config", clip, chosen, output, rtsp_port)
    if has_main("heron.overlay"):
        out(f"while it runs: rtsp://127.0.0.1:{rtsp_port}/ds-test (e.g. ffplay or VLC)")
    else:
        out("warning: heron.overlay is not installed: no annotated MP4 and no RTSP output")
    result = run_pipeline(RunRequest(config, results_dir / "run", RunOptions()), out=out)
    out(f"model: {chosen.note}")
    # The run printed where the annotated video went; the count ends the demo, so that a clip
    # on which nothing was detected cannot pass for one that shows the detector working.
    found = result.found.line() if result.found is not None else "no detector ran"
    out(f"demo took {time.monotonic() - started:.0f} s; {found}")
    return result.exit_code
