"""Triton model repositories: every config.pbtxt parses with Triton's model_config proto, plans for
several compute capabilities share one model, and malformed configs are named precisely."""

from __future__ import annotations

from pathlib import Path

import pytest
from heron.engine import triton_repo
from heron.engine.model_info import read_model_info
from heron.engine.plan_meta import InputShapes, PlanMetadata
from heron.engine.triton_repo import RepositoryError
from tritonclient.grpc import model_config_pb2 as mc  # type: ignore[import-untyped,unused-ignore]


def _rtx_meta(targets: list[str]) -> PlanMetadata:
    return PlanMetadata(
        flavour="tensorrt_rtx",
        trt_version="1.7.1.116",
        precision="fp16",
        targets=targets,
        inputs=[InputShapes(name="input_1", min=[1, 3, 8, 8], opt=[4, 3, 8, 8], max=[8, 3, 8, 8])],
        onnx_sha256="0" * 64,
        build_seconds=0.1,
        plan_bytes=4,
    )


def _base(detector_onnx: Path, name: str = "detector") -> mc.ModelConfig:
    info = read_model_info(detector_onnx)
    return triton_repo.base_config(name, info, 16, preferred_batch_sizes=[4, 16, 32])


def test_tensorrt_config_lists_a_plan_per_compute_capability(
    detector_onnx: Path, tmp_path: Path
) -> None:
    base = _base(detector_onnx)
    first = triton_repo.publish_plan(
        tmp_path, "detector", b"plan", _rtx_meta(["sm86", "sm89"]), base=base, version=1
    )
    second = triton_repo.publish_plan(
        tmp_path, "detector", b"plan", _rtx_meta(["sm120"]), base=base, version=1
    )
    assert first.name == "model_sm86_sm89.plan" and second.name == "model_sm120.plan"
    assert (tmp_path / "detector/1/model_sm120.plan.json").is_file()
    config = triton_repo.validate_config(tmp_path / "detector/config.pbtxt")
    assert config.platform == "tensorrt_plan"
    assert dict(config.cc_model_filenames) == {
        "8.6": "model_sm86_sm89.plan",
        "8.9": "model_sm86_sm89.plan",
        "12.0": "model_sm120.plan",
    }
    assert config.max_batch_size == 16
    assert list(config.dynamic_batching.preferred_batch_size) == [4, 16]  # 32 > max batch
    assert config.dynamic_batching.max_queue_delay_microseconds == 1000
    assert config.instance_group[0].kind == mc.ModelInstanceGroup.KIND_GPU
    assert config.version_policy.latest.num_versions == 2
    assert [i.name for i in config.input] == ["input_1"]
    assert list(config.input[0].dims) == [3, 128, 224]
    assert {o.name: list(o.dims) for o in config.output} == {
        "output_cov/Sigmoid": [2, 8, 14],
        "output_bbox/BiasAdd": [8, 8, 14],
    }


@pytest.mark.parametrize(
    ("python", "field", "value", "kind"),
    [
        (False, "platform", "onnxruntime_onnx", mc.ModelInstanceGroup.KIND_CPU),
        (True, "backend", "python", mc.ModelInstanceGroup.KIND_CPU),
    ],
)
def test_cpu_configs(  # noqa: PLR0917 -- parametrized
    python: bool, field: str, value: str, kind: int, detector_onnx: Path, tmp_path: Path
) -> None:
    path = triton_repo.publish_onnx(
        tmp_path, "cpu", detector_onnx, base=_base(detector_onnx, "cpu"), version=3, python=python
    )
    config = triton_repo.validate_config(path)
    assert getattr(config, field) == value
    assert config.instance_group[0].kind == kind
    assert (tmp_path / "cpu/3/model.onnx").is_file()
    assert (tmp_path / "cpu/3/model.py").is_file() == python
    assert triton_repo.next_version(tmp_path / "cpu") == 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('name: "m"\nplatform: "tensorrt_plan"\nmax_batch: 4\n', r":3:1: .*max_batch"),
        ('name: "m"\nplatform: tensorrt_plan\n', r":2:11: "),
        ('name: "m"\ninstance_group [ { kind: KIND_TPU } ]\n', r":2:26: .*KIND_TPU"),
        ('name: "other"\nplatform: "tensorrt_plan"\n', "name 'other' differs from its folder 'm'"),
        ('name: "m"\n', "neither platform nor backend"),
        ('name: "m"\nbackend: "python"\n', "at least one input and one output"),
    ],
)
def test_malformed_configs_are_named(text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "m" / "config.pbtxt"
    path.parent.mkdir()
    path.write_text(text)
    with pytest.raises(RepositoryError, match=message) as err:
        triton_repo.validate_config(path)
    assert str(path) in str(err.value)


def test_fields_triton_knows_and_heron_does_not_write_validate(tmp_path: Path) -> None:
    """The config is Triton's whole message: what a person adds for tritonserver parses."""
    path = tmp_path / "m" / "config.pbtxt"
    path.parent.mkdir()
    path.write_text(
        'name: "m"\nplatform: "tensorrt_plan"\nmax_batch_size: 8\n'
        'input [ { name: "i" data_type: TYPE_FP32 dims: [3, 8, 8] } ]\n'
        'output [ { name: "o" data_type: TYPE_FP32 dims: [2] } ]\n'
        "optimization { cuda { graphs: true } }\n"
        'model_warmup [ { name: "w" batch_size: 1 count: 2 } ]\n'
        "response_cache { enable: true }\n"
    )
    config = triton_repo.validate_config(path)
    assert config.optimization.cuda.graphs and config.response_cache.enable
    assert config.model_warmup[0].count == 2


def test_a_failed_publish_leaves_the_repository_as_it_was(
    detector_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = _base(detector_onnx)
    triton_repo.publish_plan(
        tmp_path, "detector", b"plan", _rtx_meta(["sm86"]), base=base, version=1
    )
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    config = (tmp_path / "detector/config.pbtxt").read_text()

    def disk_full(plan: Path, meta: PlanMetadata) -> Path:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(triton_repo, "write_metadata", disk_full)
    for version in (1, 2):  # adding a plan to a version, and a new version
        with pytest.raises(OSError, match="No space"):
            triton_repo.publish_plan(
                tmp_path, "detector", b"plan", _rtx_meta(["sm120"]), base=base, version=version
            )
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before
    assert (tmp_path / "detector/config.pbtxt").read_text() == config
    with pytest.raises(OSError, match="No space"):
        triton_repo.publish_plan(
            tmp_path / "new", "detector", b"plan", _rtx_meta(["sm86"]), base=base, version=1
        )
    assert not (tmp_path / "new").exists()  # the folders it made are removed too
