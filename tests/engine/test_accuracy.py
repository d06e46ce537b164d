"""The INT8 gate's AP is `heron evaluate`'s AP: one exported model, one KITTI folder, both paths,
identical reports (per-class AP, precision/recall curves, counts)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from heron.engine.accuracy import evaluate_ap, score_onnx
from heron.engine.errors import EngineError, ModelFileError
from heron.evaluation.kitti import KittiObject, write_label_file
from heron.evaluation.model_settings import ClusterSettings
from heron.training.settings import EvalSettings, TrainingSettings

from tests.training.conftest import tiny_settings

# (width, height) of the images: most at one size, two others so boxes scale per image; 10
# images make one full evaluation batch of 8 and a partial one.
SIZES = [(256, 144)] * 8 + [(200, 120), (320, 176)]


def stride8_settings() -> TrainingSettings:
    """Stride 8, NMS, box limits, SAMPLE mode: the scored settings away from their defaults."""
    base = tiny_settings()
    return replace(
        base,
        model=replace(base.model, output_stride=8),
        clustering={
            name: ClusterSettings(coverage_threshold=0.3, clustering_algorithm="NMS")
            for name in base.classes
        },
        evaluation=EvalSettings(
            minimum_overlap={"mask": 0.4},
            box_limits={"no-mask": (4, 0, 4, 0)},
            average_precision_mode="SAMPLE",
        ),
    )


def export(settings: TrainingSettings, folder: Path, box_size: float = 3.0) -> Path:
    """A random-weight DetectNet_v2 through `heron export` (settings in its metadata).

    Coverage spreads over (0, 1); boxes are about 2 × 35 × `box_size` pixels: at 3 they cover
    the input, so TAO's DBSCAN (summed coverage >= 1) finds clusters; NMS takes smaller ones."""
    import torch
    from heron.training import checkpoint as ckpt
    from heron.training.export import export_onnx
    from heron.training.model import DetectNetV2

    torch.manual_seed(0)
    model = DetectNetV2(settings.model, len(settings.classes))
    with torch.no_grad():
        model.cov.weight.normal_(std=0.5)
        model.cov.bias.fill_(-1.0)  # type: ignore[union-attr]
        model.bbox.weight.normal_(std=0.005)
        model.bbox.bias.fill_(box_size)  # type: ignore[union-attr]
    checkpoint = folder / "model.pt"
    ckpt.save(checkpoint, ckpt.Checkpoint(settings, model.state_dict(), epoch=1, step=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return export_onnx(checkpoint, folder / "model.onnx").onnx


def kitti_folder(model: Path, root: Path) -> Path:
    """Random images; labels are some of the model's own detections (so AP is not 0), random
    boxes it misses, and a class neither scores (ignored)."""
    import cv2
    from heron.training.predict import load_runner, predict_paths

    rng = np.random.default_rng(7)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    paths = []
    for i, (w, h) in enumerate(SIZES):
        path = root / "images" / f"{i:02d}.{'png' if i % 3 == 0 else 'jpg'}"
        cv2.imwrite(str(path), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        paths.append(path)
    names = {0: "with_mask", 1: "without_mask"}
    for pred in predict_paths(load_runner(model, "cpu"), paths):
        d = pred.detections
        keep = rng.random(len(d)) < 0.5
        objects = [
            KittiObject(names[int(c)], float(x1), float(y1), float(x2), float(y2))
            for (x1, y1, x2, y2), c in zip(d.xyxy[keep], d.class_ids[keep], strict=True)
        ]
        w, h = pred.size
        objects.append(KittiObject("mask_weared_incorrect", 2.0, 3.0, w / 3, h / 2))
        objects.append(KittiObject("person", 1.0, 1.0, w / 2, h - 1.0))
        write_label_file(root / "labels" / f"{pred.image.stem}.txt", objects)
    return root


@pytest.mark.parametrize(
    ("make", "box_size"),
    [(tiny_settings, 3.0), (stride8_settings, 0.4)],
    ids=["stride16-dbscan", "stride8-nms"],
)
def test_engine_ap_equals_heron_evaluate(
    make: Callable[[], TrainingSettings], box_size: float, tmp_path: Path
) -> None:
    from heron.training.job import evaluate_model

    model = export(make(), tmp_path, box_size)
    data = kitti_folder(model, tmp_path / "kitti")
    training = evaluate_model(model, data)
    engine = score_onnx(model, data)
    assert engine == training.report  # every class's AP, curve, counts and the config
    assert engine.num_images == len(SIZES)
    assert any(c.average_precision > 0 for c in engine.classes)
    ap, mean = evaluate_ap(model, data)
    assert ap == {k: 100.0 * v for k, v in training.ap.items()}
    assert mean == 100.0 * training.mean_ap


def test_scoring_errors_name_the_model_or_data(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="no such ONNX file"):
        evaluate_ap(tmp_path / "none.onnx", tmp_path)
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    with pytest.raises(ModelFileError, match="ONNX Runtime cannot load it"):
        evaluate_ap(tmp_path / "bad.onnx", tmp_path)
    model = export(tiny_settings(), tmp_path)
    with pytest.raises(EngineError, match=r"evaluating .*model.onnx on .*: .*KITTI image folder"):
        evaluate_ap(model, tmp_path / "nowhere")
