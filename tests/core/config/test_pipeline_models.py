"""The pydantic models themselves: codes and names, bounds, cross-field checks, descriptions."""

from __future__ import annotations

from typing import Any

import pytest
from heron.core.config import models, nvinfer_models, sinks, sources
from heron.core.config.models import Pipeline, pipeline_warnings
from heron.core.config.nvinfer_models import ClassAttrs, NetworkMode, NvInferConfig
from heron.core.config.problems import CROSS_FIELD
from pydantic import BaseModel, ValidationError

CAMERA = {"type": 1, "enable": True, "camera_width": 640, "camera_height": 480, "camera_fps_n": 30}
SINK = {"type": "fake", "enable": True}
DETECTOR = {"property": {"onnx_file": "/m.onnx", "num_detected_classes": 2}}


def _pipeline(**groups: Any) -> dict[str, Any]:
    return {"sources": {0: CAMERA}, "sinks": {0: SINK}, **groups}


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    return [p for e in exc.errors() if e["type"] == CROSS_FIELD for p in e["ctx"]["problems"]]


@pytest.mark.parametrize(("code", "name"), [(1, "camera_v4l2"), ("1", "camera_v4l2")])
def test_source_type_takes_code_or_name(code: object, name: str) -> None:
    by_code = Pipeline.model_validate(_pipeline(sources={0: {**CAMERA, "type": code}}))
    by_name = Pipeline.model_validate(_pipeline(sources={0: {**CAMERA, "type": name}}))

    assert by_code == by_name
    assert isinstance(by_code.sources[0], sources.CameraSource)


@pytest.mark.parametrize(
    ("value", "mode"),
    [(0, NetworkMode.FP32), ("1", NetworkMode.INT8), ("fp16", NetworkMode.FP16), (3, "best")],
)
def test_network_mode_codes(value: object, mode: str) -> None:
    config = NvInferConfig.model_validate(
        {"property": {**DETECTOR["property"], "network_mode": value}}
    )
    assert config.property.network_mode == mode


def test_duplicate_engine_ids_and_dangling_parent_are_refused() -> None:
    gie = {"enable": True, "config_file": "/x.txt", "nvinfer": DETECTOR}
    data = _pipeline(
        primary_gie={**gie, "gie_unique_id": 1},
        secondary_gies={
            0: {**gie, "gie_unique_id": 1, "operate_on_gie_id": 1},
            1: {**gie, "gie_unique_id": 3, "operate_on_gie_id": 9},
        },
    )

    with pytest.raises(ValidationError) as raised:
        Pipeline.model_validate(data)

    assert _problems(raised.value) == [
        ("secondary_gies.0.gie_unique_id", "gie-unique-id 1 is used by primary_gie too"),
        (
            "secondary_gies.1.operate_on_gie_id",
            "operate-on-gie-id 9 names no enabled engine (ids: [1, 3])",
        ),
    ]


def test_engine_id_falls_back_to_the_nvinfer_config() -> None:
    nvinfer = {"property": {**DETECTOR["property"], "gie_unique_id": 4}}
    pipeline = Pipeline.model_validate(
        _pipeline(primary_gie={"enable": True, "config_file": "/x", "nvinfer": nvinfer})
    )

    assert pipeline.primary_gie is not None and pipeline.primary_gie.unique_id == 4


def test_class_attrs_merge_and_bounds() -> None:
    config = NvInferConfig.model_validate(
        {**DETECTOR, "class_attrs_all": {"topk": 10}, "class_attrs": {"1": {"eps": 0.4}}}
    )

    assert config.class_attrs[0] == ClassAttrs(topk=10)
    assert config.class_attrs[1] == ClassAttrs(topk=10, eps=0.4)
    with pytest.raises(ValidationError, match="detected-min-w \\(20\\) is above"):
        ClassAttrs(detected_min_w=20, detected_max_w=10)


def test_tiler_smaller_than_the_streams_warns() -> None:
    multi = {"type": 3, "enable": True, "uri": "file:///v.mp4", "num_sources": 4}
    pipeline = Pipeline.model_validate(
        _pipeline(
            sources={0: multi},
            tiled_display={"enable": True, "rows": 1, "columns": 2},
            streammux={"batch_size": 4},
        )
    )

    assert pipeline.stream_count == 4
    assert [at for at, _ in pipeline_warnings(pipeline)] == ["tiled_display.rows"]


def test_rtsp_source_needs_an_rtsp_uri() -> None:
    with pytest.raises(ValidationError, match="needs an rtsp:// URI"):
        Pipeline.model_validate(
            _pipeline(sources={0: {"type": "rtsp", "enable": True, "uri": "file:///a.mp4"}})
        )


def test_every_field_is_described() -> None:
    undescribed = [
        f"{cls.__name__}.{name}"
        for module in (models, sources, sinks, nvinfer_models)
        for cls in vars(module).values()
        if isinstance(cls, type)
        and issubclass(cls, BaseModel)
        and cls.__module__ == module.__name__
        for name, info in cls.model_fields.items()
        if not info.description
    ]
    assert undescribed == []
