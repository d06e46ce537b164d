"""Where versions come from: a Triton-layout repository on disk found from the config's ONNX
path or set in the settings, and the refusals of a set-up without one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from heron.core.commands import ReplyCode
from heron.core.config.nvinfer import read_nvinfer
from heron.core.plan.settings.inference import OnnxRuntimeSettings, TorchSettings
from heron.inference.backends import RepositoryPlace, build_backend
from heron.inference.version_sources import (
    OnnxRepository,
    Unversioned,
    VersionError,
    version_source,
)
from pydantic import ValidationError

from tests.inference.conftest import ExportedDetector, write_nvinfer


def repository(root: Path, onnx: Path, *versions: str) -> Path:
    """`root/models/det/<version>/model.onnx` for each version; the first version's path."""
    for version in versions:
        folder = root / "models" / "det" / version
        folder.mkdir(parents=True)
        shutil.copy2(onnx, folder / "model.onnx")
    return root / "models" / "det" / versions[0] / "model.onnx"


def test_a_config_file_in_a_repository_names_the_repository_model_and_version(
    tmp_path: Path,
) -> None:
    path = tmp_path / "models" / "det" / "3" / "model.onnx"
    assert RepositoryPlace.of(OnnxRuntimeSettings(), path) == RepositoryPlace(
        tmp_path / "models", "det", "3"
    )
    for outside in ("det.onnx", "det/latest/model.onnx", "det/3/other.onnx"):
        assert RepositoryPlace.of(OnnxRuntimeSettings(), tmp_path / outside) is None


def test_a_repository_in_the_settings_wins(tmp_path: Path) -> None:
    settings = OnnxRuntimeSettings(model_repository=tmp_path / "repo", repository_model="det")
    inside = tmp_path / "repo" / "det" / "1" / "model.onnx"
    assert RepositoryPlace.of(settings, inside) == RepositoryPlace(tmp_path / "repo", "det", "1")
    place = RepositoryPlace.of(settings, tmp_path / "det.onnx")
    assert place == RepositoryPlace(tmp_path / "repo", "det", None)
    assert place.version_file("2") == tmp_path / "repo" / "det" / "2" / "model.onnx"


def test_repository_and_model_go_together(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="model_repository and repository_model go together"):
        OnnxRuntimeSettings(model_repository=tmp_path)


def test_the_config_model_in_a_repository_is_named_by_its_folders(
    tmp_path: Path, detector: ExportedDetector
) -> None:
    config, _ = read_nvinfer(write_nvinfer(tmp_path, repository(tmp_path, detector.onnx, "1")))
    info = build_backend(OnnxRuntimeSettings(), config).model_info()
    assert (info.name, info.version) == ("det", "1")


def test_a_repository_version_opens_as_its_own_session(
    tmp_path: Path, detector: ExportedDetector
) -> None:
    config, _ = read_nvinfer(write_nvinfer(tmp_path, repository(tmp_path, detector.onnx, "1", "2")))
    source = version_source(OnnxRuntimeSettings(), config, "det", "1")
    assert isinstance(source, OnnxRepository)
    source.prepare({"1", "2"})
    backend = source.open("2")
    assert (backend.model_info().name, backend.model_info().version) == ("det", "2")
    backend.close()
    with pytest.raises(VersionError) as caught:
        source.prepare({"1", "2", "7"})
    missing = tmp_path / "models" / "det" / "7" / "model.onnx"
    assert caught.value.code == ReplyCode.NOT_FOUND
    assert str(caught.value).startswith(f"version 7: {missing} does not exist")


def test_a_version_that_is_not_an_onnx_model_is_refused(
    tmp_path: Path, detector: ExportedDetector
) -> None:
    config, _ = read_nvinfer(write_nvinfer(tmp_path, repository(tmp_path, detector.onnx, "1")))
    (tmp_path / "models" / "det" / "2").mkdir()
    (tmp_path / "models" / "det" / "2" / "model.onnx").write_bytes(b"not onnx")
    source = version_source(OnnxRuntimeSettings(), config, "det", "1")
    with pytest.raises(VersionError) as caught:
        source.open("2")
    assert caught.value.code == ReplyCode.FAILED_PRECONDITION
    assert str(caught.value).startswith("version 2: ONNX model ")


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        (OnnxRuntimeSettings(), "the model has no repository to load versions from: put it at "),
        (
            TorchSettings(model_file=Path("m.pt2")),
            "backend torch serves one model file; run-time versions need onnxruntime or triton",
        ),
    ],
)
def test_without_a_repository_other_versions_are_a_failed_precondition(
    tmp_path: Path, detector: ExportedDetector, settings: object, says: str
) -> None:
    config, _ = read_nvinfer(write_nvinfer(tmp_path, detector.onnx))
    source = version_source(settings, config, "det", "abc123")  # type: ignore[arg-type]
    assert isinstance(source, Unversioned)
    source.prepare({"abc123"})  # the config's own version needs nothing
    with pytest.raises(VersionError) as caught:
        source.prepare({"abc123", "2"})
    assert caught.value.code == ReplyCode.FAILED_PRECONDITION
    assert str(caught.value).startswith(f"version 2: {says}")


def test_the_docs_repository_settings_load() -> None:
    import re

    import yaml

    doc = (Path(__file__).resolve().parents[2] / "docs" / "inference.md").read_text()
    section = doc[doc.index("## Model versions at run time") :]
    block = re.findall(r"```yaml\n(.*?)```", section, flags=re.DOTALL)[0]
    settings = OnnxRuntimeSettings.model_validate(yaml.safe_load(block)["backend"])
    place = RepositoryPlace.of(settings, Path("/models/facemask/1/model.onnx"))
    assert place == RepositoryPlace(Path("/models"), "facemask", "1")
