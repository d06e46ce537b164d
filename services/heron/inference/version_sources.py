"""Where the model's other versions come from (SetModelVersions, heron.inference.model_versions).

A `VersionSource` makes a set of versions available (`prepare`) and opens one as a Backend
(`open`). Three kinds:

- `OnnxRepository`: a Triton-layout repository on disk, `<repository>/<model>/<version>/model.onnx`,
  each version its own ONNX Runtime session in this process.
- `TritonVersions`: the versions of `TritonSettings.model_name` in Triton's own repository.
  `prepare` asks Triton to load exactly those versions (`load_model` with a config whose
  `version_policy` is `specific`), which needs Triton in `--model-control-mode=explicit`.
- `Unversioned`: a backend with one model file and no repository; it refuses every version
  other than the config's, saying what to configure.

A failure is a `VersionError` carrying the reply's status code: NOT_FOUND for a version that is
not there (naming the path), FAILED_PRECONDITION for a set-up that cannot serve versions,
UNAVAILABLE for a Triton that does not answer now.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Set
from typing import Any, Protocol

from heron.core.commands import ReplyCode
from heron.core.config.nvinfer_models import NetworkMode, NvInferConfig
from heron.core.plan.settings.inference import (
    BackendSettings,
    OnnxRuntimeSettings,
    TritonSettings,
)
from heron.inference.backends import Backend, RepositoryPlace, onnx_model_file
from heron.inference.errors import BackendUnavailableError, ModelMismatchError

log = logging.getLogger(__name__)

TORCH_REFUSAL = "backend torch serves one model file; run-time versions need onnxruntime or triton"
# Triton's words when it runs in --model-control-mode=none or poll.
NOT_EXPLICIT = "explicit model load / unload is not allowed"


class VersionError(Exception):
    """A version that cannot be served; `code` is the reply's status."""

    def __init__(self, code: ReplyCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class VersionSource(Protocol):
    """Versions of the config's model other than the config's own."""

    def prepare(self, versions: Set[str]) -> None:
        """Make exactly `versions` (the config's included) available, or VersionError."""

    def open(self, version: str) -> Backend:
        """`version` as a connected backend, ready to infer, or VersionError."""


class Unversioned:
    """One model and no repository: every other version is refused with `reason`."""

    def __init__(self, config_version: str, reason: str) -> None:
        self.config_version = config_version
        self.reason = reason

    def prepare(self, versions: Set[str]) -> None:
        others = sorted(set(versions) - {self.config_version})
        if others:
            raise VersionError(ReplyCode.FAILED_PRECONDITION, f"version {others[0]}: {self.reason}")

    def open(self, version: str) -> Backend:
        raise VersionError(ReplyCode.FAILED_PRECONDITION, f"version {version}: {self.reason}")


class OnnxRepository:
    """Versions as `<repository>/<model>/<version>/model.onnx`, run by ONNX Runtime here."""

    def __init__(
        self, place: RepositoryPlace, settings: OnnxRuntimeSettings, model_name: str
    ) -> None:
        self.place = place
        self.settings = settings
        self.model_name = model_name  # every version is named as the config's model

    def prepare(self, versions: Set[str]) -> None:
        for version in sorted(versions):
            if version == self.place.version:
                continue
            path = self.place.version_file(version)
            if not path.is_file():
                raise VersionError(
                    ReplyCode.NOT_FOUND,
                    f"version {version}: {path} does not exist (a version is "
                    f"<repository>/<model>/<version>/model.onnx)",
                )

    def open(self, version: str) -> Backend:
        from heron.inference.backends.onnx_runtime import OnnxRuntimeBackend

        path = self.place.version_file(version)
        if not path.is_file():
            raise VersionError(ReplyCode.NOT_FOUND, f"version {version}: {path} does not exist")
        s = self.settings
        try:
            # As the file is: the config's int8-calib-file holds the scales of the config's
            # model, not of this one (a version can come quantised: Q/DQ runs as it is).
            return OnnxRuntimeBackend(
                path,
                s.intra_op_threads,
                s.inter_op_threads,
                spin_wait=s.spin_wait,
                name=self.model_name,
                version=version,
            )
        except ModelMismatchError as e:
            raise VersionError(ReplyCode.FAILED_PRECONDITION, f"version {version}: {e}") from e


class TritonVersions:
    """Versions of one Triton model, loaded and unloaded by explicit model control."""

    def __init__(self, settings: TritonSettings) -> None:
        self.settings = settings

    def prepare(self, versions: Set[str]) -> None:
        s = self.settings
        for version in versions:
            if not version.isdigit():
                raise VersionError(
                    ReplyCode.INVALID_ARGUMENT,
                    f"version {version}: Triton model versions are numbers (folders 1, 2, ...)",
                )
        client = self._client()
        try:
            self._load(client, versions)
            missing = [v for v in sorted(versions) if not client.is_model_ready(s.model_name, v)]
        except VersionError:
            raise
        except Exception as e:  # tritonclient has one exception type for every failure
            raise VersionError(ReplyCode.UNAVAILABLE, f"Triton at {s.url}: {e}") from e
        finally:
            client.close()
        if missing:
            raise VersionError(
                ReplyCode.NOT_FOUND,
                f"version {missing[0]}: Triton at {s.url} has no version {missing[0]} of model "
                f"{s.model_name!r} it could load (is <repository>/{s.model_name}/{missing[0]}/ "
                "there? Triton's log says why a load failed)",
            )

    def _load(self, client: Any, versions: Set[str]) -> None:
        """Load exactly `versions`: the model's own config with a `specific` version policy.
        Versions loaded already keep serving while the others load."""
        s = self.settings
        config = client.get_model_config(s.model_name, as_json=True)["config"]
        config["version_policy"] = {"specific": {"versions": sorted(versions, key=int)}}
        try:
            client.load_model(s.model_name, config=json.dumps(config))
        except Exception as e:  # an InferenceServerException; its words tell the cases apart
            if NOT_EXPLICIT in str(e):
                raise VersionError(
                    ReplyCode.FAILED_PRECONDITION,
                    f"Triton at {s.url} does not let clients load models: run it with "
                    f"--model-control-mode=explicit ({e})",
                ) from e
            raise

    def open(self, version: str) -> Backend:
        from heron.inference.backends.triton_grpc import TritonBackend

        backend = TritonBackend(self.settings.model_copy(update={"model_version": version}))
        try:
            backend.connect()
        except BackendUnavailableError as e:
            backend.close()
            raise VersionError(ReplyCode.UNAVAILABLE, f"version {version}: {e}") from e
        except ModelMismatchError as e:
            backend.close()
            raise VersionError(ReplyCode.FAILED_PRECONDITION, f"version {version}: {e}") from e
        return backend

    def _client(self) -> Any:
        import tritonclient.grpc as grpcclient  # type: ignore[import-untyped,unused-ignore]

        return grpcclient.InferenceServerClient(self.settings.url)


def version_source(
    settings: BackendSettings, nvinfer: NvInferConfig, model_name: str, config_version: str
) -> VersionSource:
    """The source of the configured backend's versions."""
    if isinstance(settings, TritonSettings):
        return TritonVersions(settings)
    if not isinstance(settings, OnnxRuntimeSettings):
        return Unversioned(config_version, TORCH_REFUSAL)
    place = RepositoryPlace.of(settings, onnx_model_file(settings, nvinfer))
    if place is None:
        return Unversioned(
            config_version,
            "the model has no repository to load versions from: put it at "
            "<repository>/<model>/<version>/model.onnx and point the nvinfer onnx-file (or "
            "backend.model_file) there, or set backend.model_repository and "
            "backend.repository_model",
        )
    prop = nvinfer.property
    if prop.network_mode in (NetworkMode.INT8, NetworkMode.BEST) and prop.int8_calib_file:
        log.warning(
            "run-time versions of %r run as their files are (FP32, or Q/DQ if quantised): the "
            "int8-calib-file holds the scales of the config's model only",
            model_name,
        )
    return OnnxRepository(place, settings, model_name)
