"""The inference settings' model names are folder names of a model repository: a name that
would climb out of it (`../x`) or name a path is refused, naming the field (docs/deploy.md,
"Security", "Input checks")."""

from __future__ import annotations

import pytest
from heron.core.plan.settings.inference import OnnxRuntimeSettings, TritonSettings
from pydantic import ValidationError

BAD = ["../facemask", "facemask/../../etc", "a/b", ".hidden", "..", "", "face mask", "x" * 129]
GOOD = ["facemask", "det_onnx", "face-mask.v2", "_private", "x" * 128]


@pytest.mark.parametrize("name", BAD)
def test_a_triton_model_name_that_is_not_a_folder_name_is_refused(name: str) -> None:
    with pytest.raises(ValidationError) as refused:
        TritonSettings(model_name=name)
    (error,) = refused.value.errors()
    assert error["loc"] == ("model_name",)
    assert "expected a model's folder name in the repository" in error["msg"]
    assert repr(name) in error["msg"]


@pytest.mark.parametrize("name", BAD)
def test_a_repository_model_that_is_not_a_folder_name_is_refused(name: str) -> None:
    with pytest.raises(ValidationError) as refused:
        OnnxRuntimeSettings(model_repository="/models/triton", repository_model=name)
    assert [e["loc"] for e in refused.value.errors()] == [("repository_model",)]


@pytest.mark.parametrize("name", GOOD)
def test_folder_names_are_taken(name: str) -> None:
    assert TritonSettings(model_name=name).model_name == name
    settings = OnnxRuntimeSettings(model_repository="/models/triton", repository_model=name)
    assert settings.repository_model == name
