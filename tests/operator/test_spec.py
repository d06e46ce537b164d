"""The operator's EngineBuild spec model refuses what the CRD refuses and names the same fields
(charts/heron/crds/enginebuilds.heron.dev.yaml): no API server or operator needed."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_origin

import kopf
import pytest
import yaml
from heron_operator import spec as spec_module
from heron_operator.run import kopf_settings
from heron_operator.settings import OperatorSettings
from heron_operator.spec import EngineBuildSpec
from pydantic import BaseModel, ValidationError

Json = dict[str, Any]
CRD = Path(__file__).parents[2] / "charts" / "heron" / "crds" / "enginebuilds.heron.dev.yaml"
# The spec's paths on the model volume, as `(object, field)` of the CRD's schema.
VOLUME_PATHS = [
    ("model", "onnx"),
    ("model", "calibrationCache"),
    ("accuracyGate", "calibrationImages"),
    ("accuracyGate", "evalData"),
]


def crd_spec() -> Json:
    crd = yaml.safe_load(CRD.read_text())
    schema: Json = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return dict(schema["properties"]["spec"])


def spec(**changes: Any) -> Json:
    return {
        "model": {"onnx": "/models/detector/model.onnx"},
        "modelName": "detector",
        "modelRepository": {"claimName": "models"},
        **changes,
    }


def refusal(body: Json) -> list[str]:
    with pytest.raises(ValidationError) as e:
        EngineBuildSpec.model_validate(body)
    return [".".join(str(p) for p in error["loc"]) for error in e.value.errors()]


def fields_of(model: type[BaseModel]) -> Json:
    """The model's fields by alias (the CRD's names), nested models as dicts of theirs."""
    out: Json = {}
    for name, info in model.model_fields.items():
        kind = info.annotation
        if get_origin(kind) is None and isinstance(kind, type) and issubclass(kind, BaseModel):
            out[info.alias or name] = fields_of(kind)
        else:
            out[info.alias or name] = None
    return out


def schema_fields(schema: Json) -> Json:
    return {
        name: schema_fields(sub) if sub.get("type") == "object" and "properties" in sub else None
        for name, sub in schema["properties"].items()
    }


def test_the_model_has_the_crds_fields() -> None:
    """Every spec field of the CRD, no more: one home per setting (no annotations besides)."""
    assert fields_of(EngineBuildSpec) == schema_fields(crd_spec())


def test_the_checks_are_the_crds() -> None:
    props = crd_spec()["properties"]
    name = props["modelName"]
    assert (name["pattern"], name["maxLength"]) == (
        spec_module.MODEL_NAME_PATTERN,
        spec_module.MODEL_NAME_MAX,
    )
    for parent, field in VOLUME_PATHS:
        path = props[parent]["properties"][field]
        assert (path["pattern"], path["minLength"], path["maxLength"]) == (
            spec_module.VOLUME_PATH_PATTERN,
            2,
            spec_module.PATH_MAX,
        ), field
        (rule,) = path["x-kubernetes-validations"]
        assert rule["rule"] == f"!self.matches('{spec_module.DOT_DOT_PATTERN}')", field
    # An image reference, or empty (the operator's image).
    assert props["image"]["pattern"] == f"^({spec_module.IMAGE_PATTERN[1:-1]})?$"


@pytest.mark.parametrize(("parent", "field"), VOLUME_PATHS)
@pytest.mark.parametrize("path", ["detector/model.onnx", "/", "", "models/x"])
def test_paths_on_the_model_volume_are_absolute(parent: str, field: str, path: str) -> None:
    body = spec()
    body[parent] = {**body.get(parent, {}), field: path}
    assert refusal(body) == [f"{parent}.{field}"]


@pytest.mark.parametrize(("parent", "field"), VOLUME_PATHS)
@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("/etc/passwd", "expected an absolute path on the model volume (/models/...)"),
        ("/data/models/m.onnx", "expected an absolute path on the model volume (/models/...)"),
        ("/models/../etc/passwd", "must not contain a '..' segment"),
        ("/models/detector/..", "must not contain a '..' segment"),
    ],
)
def test_paths_outside_the_model_volume_are_refused_naming_the_field(
    parent: str, field: str, path: str, problem: str
) -> None:
    body = spec()
    body[parent] = {**body.get(parent, {}), field: path}
    with pytest.raises(ValidationError) as refused:
        EngineBuildSpec.model_validate(body)
    (error,) = refused.value.errors()
    assert ".".join(map(str, error["loc"])) == f"{parent}.{field}"
    assert problem in error["msg"] and repr(path) in error["msg"]


@pytest.mark.parametrize(
    "image",
    [
        "http://evil.example/heron-engine:1",
        "file:///etc/passwd",
        "docker://heron-engine",
        "heron engine",
        "Heron/Engine:1",
        "ghcr.io/heron//engine",
    ],
)
def test_images_with_a_scheme_or_odd_characters_are_refused(image: str) -> None:
    assert refusal(spec(image=image)) == ["image"]


@pytest.mark.parametrize(
    "image",
    [
        "",
        "busybox",
        "ghcr.io/heron-project/heron-engine:0.1.0",
        "registry.local:5000/heron/engine:v1@sha256:" + "a" * 64,
        "nvcr.io/nvidia/tritonserver:25.06-py3",
    ],
)
def test_image_references_are_taken(image: str) -> None:
    assert EngineBuildSpec.model_validate(spec(image=image)).image == image


def test_absolute_paths_are_taken_as_they_are() -> None:
    given = spec(
        model={"onnx": "/models/m.onnx", "calibrationCache": "/models/c.bin"},
        accuracyGate={"calibrationImages": "/models/calib", "evalData": "/models/val"},
    )
    parsed = EngineBuildSpec.model_validate(given)
    assert (parsed.model.onnx, parsed.model.calibration_cache) == (
        "/models/m.onnx",
        "/models/c.bin",
    )
    gate = parsed.accuracy_gate
    assert (gate.calibration_images, gate.eval_data) == ("/models/calib", "/models/val")


@pytest.mark.parametrize(
    "name", ["Detector", "FaceMask", "face.mask", "-mask", "mask_", "a" * 64, "", "mask\n"]
)
def test_model_names_the_crd_refuses_are_refused(name: str) -> None:
    assert refusal(spec(modelName=name)) == ["modelName"]


@pytest.mark.parametrize("name", ["facemask", "face-mask", "face_mask_2", "a", "a" * 63])
def test_model_names_the_crd_takes_are_taken(name: str) -> None:
    assert EngineBuildSpec.model_validate(spec(modelName=name)).model_name == name


@pytest.mark.parametrize("model", [{}, {"onnx": "/models/m.onnx", "fromTrainingRun": "run"}])
def test_exactly_one_model_source(model: Json) -> None:
    assert refusal(spec(model=model)) == ["model"]


def test_a_training_run_has_a_name() -> None:
    assert refusal(spec(model={"fromTrainingRun": ""})) == ["model.fromTrainingRun"]


def test_kopf_keeps_its_state_in_annotations_so_the_crd_leaves_no_status_kopf() -> None:
    """kopf's progress and diff-base are heron.dev/* annotations: kopf writes nothing into the
    status, and the CRD has no status.kopf (its comment says so)."""
    k = kopf_settings(OperatorSettings(standalone=True))
    assert isinstance(k.persistence.progress_storage, kopf.AnnotationsProgressStorage)
    assert isinstance(k.persistence.diffbase_storage, kopf.AnnotationsDiffBaseStorage)
    crd = yaml.safe_load(CRD.read_text())
    status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert "kopf" not in status["properties"]
