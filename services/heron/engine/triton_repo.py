"""Triton model repositories: `<repo>/<model>/<version>/model.plan|model.onnx|model.py` and a
`config.pbtxt` built as Triton's own `inference.ModelConfig` message (tritonclient ships it as
`tritonclient.grpc.model_config_pb2`, generated from the model_config.proto tritonserver parses
config.pbtxt with), printed with text_format and parsed back (`validate_config`) before anything
is published. The full message, not a copy of the part Heron writes: a config another tool (or a
person) extended with fields Triton knows (`optimization`, `model_warmup`...) still validates,
and a field Triton does not know is refused, with its line and column.

Three kinds: `tensorrt_plan` on GPUs (`cc_model_filenames` per compute capability),
`onnxruntime_onnx` for CPU nodes, and the python backend running ONNX Runtime.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc  # type: ignore[import-untyped,unused-ignore]

from heron.core.outputs import staged_folder
from heron.engine.errors import ModelFileError
from heron.engine.model_info import ModelInfo, TensorSpec
from heron.engine.plan_meta import PlanMetadata, write_metadata
from heron.engine.python_model import MODEL_PY

CONFIG_FILE = "config.pbtxt"
# ONNX TensorProto data types → Triton's.
_TYPES = {
    1: mc.TYPE_FP32,
    10: mc.TYPE_FP16,
    2: mc.TYPE_UINT8,
    3: mc.TYPE_INT8,
    6: mc.TYPE_INT32,
    7: mc.TYPE_INT64,
    11: mc.TYPE_FP64,
    9: mc.TYPE_BOOL,
}


class RepositoryError(ModelFileError):
    """A config.pbtxt that does not parse or does not describe its model."""


def _data_type(spec: TensorSpec) -> mc.DataType.ValueType:
    if spec.elem_type not in _TYPES:
        raise RepositoryError(
            f"tensor {spec.name!r}: ONNX type {spec.elem_type} has no Triton type"
        )
    return _TYPES[spec.elem_type]


def base_config(
    name: str,
    info: ModelInfo,
    max_batch_size: int,
    *,
    preferred_batch_sizes: Sequence[int] = (),
    max_queue_delay_us: int = 1000,
    versions_kept: int = 2,
) -> mc.ModelConfig:
    """Inputs/outputs from the ONNX, dynamic batching, the latest `versions_kept` versions."""
    config = mc.ModelConfig(name=name, max_batch_size=max_batch_size)
    config.input.add(
        name=info.input.name,
        data_type=_data_type(info.input),
        format=mc.ModelInput.FORMAT_NCHW,
        dims=list(info.input.dims),
    )
    for out in info.outputs:
        config.output.add(name=out.name, data_type=_data_type(out), dims=list(out.dims))
    preferred = [b for b in preferred_batch_sizes if b <= max_batch_size]
    config.dynamic_batching.preferred_batch_size.extend(preferred)
    config.dynamic_batching.max_queue_delay_microseconds = max_queue_delay_us
    config.version_policy.latest.num_versions = versions_kept
    return config


def tensorrt_config(
    base: mc.ModelConfig, plan_files: dict[str, str], gpus: Sequence[int] = ()
) -> mc.ModelConfig:
    """`plan_files`: compute capability ('8.6') → plan file name in each version folder."""
    config = mc.ModelConfig()
    config.CopyFrom(base)
    config.platform = "tensorrt_plan"
    config.cc_model_filenames.update(plan_files)
    config.default_model_filename = sorted(plan_files.values())[0]
    config.instance_group.add(kind=mc.ModelInstanceGroup.KIND_GPU, count=1, gpus=list(gpus))
    return config


def onnx_config(base: mc.ModelConfig, instances: int = 1) -> mc.ModelConfig:
    config = mc.ModelConfig()
    config.CopyFrom(base)
    config.platform = "onnxruntime_onnx"
    config.default_model_filename = "model.onnx"
    config.instance_group.add(kind=mc.ModelInstanceGroup.KIND_CPU, count=instances)
    return config


def python_config(base: mc.ModelConfig, instances: int = 1, threads: int = 1) -> mc.ModelConfig:
    config = mc.ModelConfig()
    config.CopyFrom(base)
    config.backend = "python"
    config.instance_group.add(kind=mc.ModelInstanceGroup.KIND_CPU, count=instances)
    config.parameters["intra_op_threads"].string_value = str(threads)
    return config


def parse_config(text: str, source: str) -> mc.ModelConfig:
    """RepositoryError naming source, line and column when text_format rejects it."""
    try:
        return text_format.Parse(text, mc.ModelConfig())
    except text_format.ParseError as e:
        raise RepositoryError(f"{source}:{e.GetLine()}:{e.GetColumn()}: {e}") from None


def validate_config(path: Path) -> mc.ModelConfig:
    """Parse `path` and check what Triton would refuse: name vs folder, no inputs, no runtime."""
    if not path.is_file():
        raise RepositoryError(f"{path}: no such config file")
    config = parse_config(path.read_text(), str(path))
    _check_config(config, path)
    return config


def _check_config(config: mc.ModelConfig, path: Path) -> None:
    problems = []
    if config.name != path.parent.name:
        problems.append(f"name {config.name!r} differs from its folder {path.parent.name!r}")
    if not config.platform and not config.backend:
        problems.append("neither platform nor backend is set")
    if not config.input or not config.output:
        problems.append("expected at least one input and one output")
    if config.max_batch_size < 0:
        problems.append(f"max_batch_size must be ≥ 0, got {config.max_batch_size}")
    if problems:
        raise RepositoryError(f"{path}: " + "; ".join(problems))


def _publish_version(
    model_dir: Path, version: int, config: mc.ModelConfig, fill: Callable[[Path], None]
) -> Path:
    """Stage the version folder (`fill` writes its files) and config.pbtxt, then rename them
    into `model_dir`: Triton, polling the repository, never sees a version without its model
    file, and a failed publish leaves the repository as it was. The config is checked, as
    Triton would read it back, before anything is written."""
    path = model_dir / CONFIG_FILE
    text = text_format.MessageToString(config)
    _check_config(parse_config(text, str(path)), path)
    # merge: a version folder that exists keeps the plans of other compute capabilities.
    with staged_folder(model_dir, merge=True) as staging:
        version_dir = staging / str(version)
        version_dir.mkdir()
        fill(version_dir)
        (staging / CONFIG_FILE).write_text(text)
    return path


def next_version(model_dir: Path) -> int:
    versions = [int(p.name) for p in model_dir.glob("*") if p.is_dir() and p.name.isdigit()]
    return max(versions, default=0) + 1


def plan_file_name(meta: PlanMetadata) -> str:
    tags = meta.targets or [f"sm{(meta.compute_capability or '').replace('.', '')}"]
    return f"model_{'_'.join(tags)}.plan"


def publish_plan(
    repo: Path, name: str, plan: bytes, meta: PlanMetadata, *, base: mc.ModelConfig, version: int
) -> Path:
    """Add a plan to `version`; plans for other compute capabilities already there stay listed."""
    model_dir = repo / name
    version_dir = model_dir / str(version)
    plan_name = plan_file_name(meta)
    files = {cc: plan_name for cc in meta.compute_capabilities()}
    existing = model_dir / CONFIG_FILE
    if existing.is_file():
        old = validate_config(existing)
        # Keep the capabilities whose plan is still in this version (or is this very plan).
        kept = {
            cc: f
            for cc, f in old.cc_model_filenames.items()
            if f == plan_name or (version_dir / f).is_file()
        }
        files = {**kept, **files}

    def fill(folder: Path) -> None:
        (folder / plan_name).write_bytes(plan)
        write_metadata(folder / plan_name, meta)

    _publish_version(model_dir, version, tensorrt_config(base, files), fill)
    return version_dir / plan_name


def publish_onnx(
    repo: Path, name: str, onnx_file: Path, *, base: mc.ModelConfig, version: int, python: bool
) -> Path:
    """model.onnx for the onnxruntime backend, or with the python backend's model.py."""

    def fill(folder: Path) -> None:
        shutil.copy2(onnx_file, folder / "model.onnx")
        if python:
            (folder / "model.py").write_text(MODEL_PY)

    config = python_config(base) if python else onnx_config(base)
    return _publish_version(repo / name, version, config, fill)
