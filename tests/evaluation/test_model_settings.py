"""The contract between training's settings and the scoring reader: `read_settings` of
`TrainingSettings.to_dict()` gives exactly what training scores with (classes, input size, bbox
coding, clustering, evaluation config, class mapping), so the two cannot drift."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from heron.core.model_metadata import SETTINGS_METADATA_KEY
from heron.evaluation import model_settings
from heron.evaluation.model_settings import (
    ClusterSettings,
    ModelSettingsError,
    read_settings,
    settings_from_metadata,
)
from heron.postprocess.grid import BBoxCoding
from heron.training import model as training_model
from heron.training.predict import cluster_params, settings_json
from heron.training.settings import EvalSettings, ModelSettings, TrainingSettings
from heron.training.validation import evaluation_config

from tests.training.conftest import tiny_settings

COMMITTED_ONNX = Path(__file__).resolve().parents[2] / "models" / "facemask" / "model.onnx"


def full_settings() -> TrainingSettings:
    """Every scored field away from its default: stride 8, NMS for one class, box limits."""
    base = tiny_settings()
    return replace(
        base,
        model=replace(base.model, output_stride=8, bbox_scale=12.5, bbox_offset=0.0),
        clustering={
            "no-mask": ClusterSettings(
                coverage_threshold=0.2, clustering_algorithm="NMS", nms_iou_threshold=0.4
            )
        },
        evaluation=EvalSettings(
            minimum_overlap={"mask": 0.4},
            box_limits={"no-mask": (8, 0, 4, 100)},
            average_precision_mode="SAMPLE",
        ),
    )


def committed_settings() -> TrainingSettings:
    import onnx

    if not COMMITTED_ONNX.is_file():
        pytest.skip(f"{COMMITTED_ONNX} is absent")
    meta = {p.key: p.value for p in onnx.load(str(COMMITTED_ONNX)).metadata_props}
    return TrainingSettings.from_dict(json.loads(meta[SETTINGS_METADATA_KEY]))


CASES = {
    "defaults": lambda: TrainingSettings(classes=("face",)),
    "tiny": tiny_settings,
    "full": full_settings,
    "committed facemask model": committed_settings,
}


@pytest.mark.parametrize("make", CASES.values(), ids=CASES.keys())
def test_the_reader_gives_what_training_scores_with(make: Any) -> None:
    settings: TrainingSettings = make()
    read = read_settings(json.loads(settings_json(settings)))
    m = settings.model
    assert read.classes == settings.classes
    assert (read.input_width, read.input_height) == (m.input_width, m.input_height)
    assert read.coding == BBoxCoding(
        stride=m.output_stride, scale=m.bbox_scale, offset=m.bbox_offset
    )
    assert list(read.clustering) == cluster_params(settings)
    assert read.evaluation == evaluation_config(settings)
    names = {*settings.classes, *settings.class_mapping, "unknown-class"}
    assert {n: read.target_of(n) for n in names} == {n: settings.target_of(n) for n in names}


def test_scoring_caps_candidates_as_training_validation_does() -> None:
    read = read_settings(tiny_settings().to_dict())
    assert {p.max_candidates for p in read.clustering} == {model_settings.MAX_CANDIDATES}


def test_exports_from_before_the_stride_8_neck_read_as_stride_16() -> None:
    data = tiny_settings().to_dict()
    del data["model"]["output_stride"]
    assert TrainingSettings.from_dict(data).model.output_stride == 16
    assert read_settings(data).coding.stride == 16


def test_training_exports_the_tensor_names_the_reader_expects() -> None:
    assert (training_model.INPUT_NAME, training_model.COV_NAME, training_model.BBOX_NAME) == (
        model_settings.INPUT_NAME,
        model_settings.COV_NAME,
        model_settings.BBOX_NAME,
    )


def test_a_class_without_clustering_gets_training_defaults() -> None:
    settings = TrainingSettings(classes=("a", "b"), clustering={"a": ClusterSettings(0.3)})
    assert settings.cluster_for("b") == ClusterSettings()
    assert read_settings(settings.to_dict()).clustering[1] == model_settings.cluster_params(
        ClusterSettings()
    )


def _without(path: str) -> dict[str, Any]:
    data = tiny_settings().to_dict()
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[key]
    del node[last]
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_without("classes"), r"\[classes\] is missing"),
        (_without("model.input_width"), r"settings model: \[input_width\] is missing"),
        (_without("evaluation.box_limits"), r"settings evaluation: \[box_limits\] is missing"),
        (_without("class_mapping"), r"\[class_mapping\] is missing"),
        ({**tiny_settings().to_dict(), "classes": []}, r"\[classes\] expected class names"),
        (
            {
                **tiny_settings().to_dict(),
                "model": {**ModelSettings().__dict__, "input_width": "w"},
            },
            r"\[input_width\] expected int, got str 'w'",
        ),
        (
            {**tiny_settings().to_dict(), "clustering": {"mask": {"eps": 1.0}}},
            r"settings clustering.mask: unknown fields \['eps'\]",
        ),
        (
            {**tiny_settings().to_dict(), "clustering": {"mask": {"clustering_algorithm": "X"}}},
            r"clustering_algorithm must be one of DBSCAN, NMS, HYBRID",
        ),
        ([1, 2], r"settings: expected a mapping, got list"),
    ],
)
def test_bad_settings_name_the_field(data: Any, message: str) -> None:
    with pytest.raises(ModelSettingsError, match=message):
        read_settings(data)


def test_metadata_without_settings_or_json_is_refused() -> None:
    with pytest.raises(ModelSettingsError, match=r"m.onnx: no 'heron.settings' metadata"):
        settings_from_metadata({}, "m.onnx")
    with pytest.raises(ModelSettingsError, match=r"m.onnx: metadata 'heron.settings' is not JSON"):
        settings_from_metadata({"heron.settings": "{"}, "m.onnx")
    read = settings_from_metadata({"heron.settings": settings_json(tiny_settings())}, "m.onnx")
    assert read.classes == ("mask", "no-mask")
