"""Model versions at run time on Triton: the real tritonserver of the nvidia-pytriton wheel in
`--model-control-mode=explicit`, with versions 1, 2 (and an incompatible 3) of one model in its
repository. The service asks Triton to load the versions a routing names and to unload the
others, and sends each request with its version."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from heron.core.commands import ReplyCode

from tests.inference.conftest import NET_H, NET_W, write_nvinfer, write_pipeline
from tests.inference.detector import BBOX_NAME, COV_NAME
from tests.inference.test_model_versions_service import STREAMS, Rig, runs
from tests.support.triton_server import TritonServer, TritonUnavailableError, write_onnx_model

MODEL = "det"


@pytest.fixture(scope="module")
def triton(
    tmp_path_factory: pytest.TempPathFactory, version_files: dict[str, Path]
) -> Iterator[TritonServer]:
    root = tmp_path_factory.mktemp("triton-versions")
    repository = root / "models"
    for version, onnx in version_files.items():
        write_onnx_model(
            repository,
            MODEL,
            onnx,
            input_name="input_1",
            input_dims=(3, NET_H, NET_W),
            outputs={
                COV_NAME: (2, NET_H // 16, NET_W // 16),
                BBOX_NAME: (8, NET_H // 16, NET_W // 16),
            },
            max_batch_size=4,
            version=int(version),
        )
    with (repository / MODEL / "config.pbtxt").open("a") as config:
        config.write("version_policy: { specific: { versions: [1] } }\n")  # the config's only
    explicit = ["--model-control-mode=explicit", f"--load-model={MODEL}"]
    try:
        server = TritonServer(repository, root, extra_args=explicit)
    except TritonUnavailableError as e:
        pytest.skip(str(e))
    server.start()
    yield server
    server.stop()


def ready(server: TritonServer, version: str) -> bool:
    import tritonclient.grpc as grpcclient  # type: ignore[import-untyped,unused-ignore]

    client = grpcclient.InferenceServerClient(server.grpc_url)
    try:
        return bool(client.is_model_ready(MODEL, version))
    finally:
        client.close()


def test_triton_loads_the_canary_serves_it_and_unloads_it_after_a_rollback(
    triton: TritonServer, redis_url: str, tmp_path: Path, version_files: dict[str, Path]
) -> None:
    backend = {"kind": "triton", "url": triton.grpc_url, "model_name": MODEL, "model_version": "1"}
    pipeline = write_pipeline(
        tmp_path, write_nvinfer(tmp_path, version_files["1"]), sources=STREAMS
    )
    rig = Rig(redis_url, pipeline, tmp_path, backend=backend)
    try:
        assert not ready(triton, "2")
        answer = rig.set(source_1="2")
        assert (answer.code, list(answer.model_versions.loaded)) == (ReplyCode.OK, ["1", "2"])
        assert ready(triton, "2")
        assert runs(rig.frames(0, 1)) == {
            "source-0": {("1", "0")},
            "source-1": {("2", "1")},
            "source-2": {("1", "0")},
        }

        missing = rig.set(source_1="7")
        assert missing.code == ReplyCode.NOT_FOUND
        assert missing.message.startswith("version 7: Triton at ")
        incompatible = rig.set(source_1="3")
        assert incompatible.code == ReplyCode.FAILED_PRECONDITION
        assert "its output 'output_cov/Sigmoid' is 3 x 4 x 7 per image" in incompatible.message
        assert runs(rig.frames(1, 1))["source-1"] == {("2", "1")}  # the routing stayed

        assert rig.set().code == ReplyCode.OK  # roll back
        deadline = time.monotonic() + 10
        while ready(triton, "2") or ready(triton, "3"):
            assert time.monotonic() < deadline, "Triton still has the canary loaded"
            time.sleep(0.1)
        assert ready(triton, "1")
        assert runs(rig.frames(2, 1)) == {f"source-{s}": {("1", "0")} for s in range(STREAMS)}
    finally:
        rig.close()


def test_a_restart_mid_canary_keeps_the_config_version_triton_served_first(
    triton: TritonServer, redis_url: str, tmp_path: Path, version_files: dict[str, Path]
) -> None:
    """With no model_version set, the service serves what Triton has at start. Mid-canary
    Triton also has the canary loaded, and it is the newest. A restarted service keeps the
    version the stored routing says was the config's, and only the canary stream runs the
    canary."""
    backend = {"kind": "triton", "url": triton.grpc_url, "model_name": MODEL}
    pipeline = write_pipeline(
        tmp_path, write_nvinfer(tmp_path, version_files["1"]), sources=STREAMS
    )
    first = Rig(redis_url, pipeline, tmp_path, backend=backend)
    try:
        assert first.set(source_1="2").code == ReplyCode.OK
        assert ready(triton, "2")
    finally:
        first.close()  # as a crash would: Triton keeps both versions loaded
    again = Rig(redis_url, pipeline, tmp_path, backend=backend)
    try:
        assert runs(again.frames(0, 1)) == {
            "source-0": {("1", "0")},
            "source-1": {("2", "1")},
            "source-2": {("1", "0")},
        }
        assert again.set().code == ReplyCode.OK  # roll back
        deadline = time.monotonic() + 10
        while ready(triton, "2"):
            assert time.monotonic() < deadline, "Triton still has the canary loaded"
            time.sleep(0.1)
    finally:
        again.close()
