"""TAO DetectNet_v2 spec files: the experiment spec (train / evaluate / prune / retrain) and the
dataset-convert spec, loaded into the `heron.v1.tao` protobuf messages.

Both come in protobuf text format, exactly as TAO reads them, or as the same content in YAML
(`.yaml`/`.yml`). Loading parses, then checks ranges and cross-section agreements; every finding
is a `Diagnostic` with `file:line` and the field path, and any error raises `ConfigError`.

    spec = load_experiment_spec("specs/detectnet_v2_train_resnet18_kitti.txt")
    spec.message.training_config.batch_size_per_gpu      # a heron.v1.tao.Experiment
    spec_to_dict(spec.message)                           # TAO field names, secrets redacted

What training code should use when a field is absent lives in `heron.core.config.tao.defaults`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from heron.core.config.diagnostics import ConfigError, Diagnostic, Diagnostics, Severity, closest
from heron.core.config.tao import text_format, yaml_format
from heron.core.config.tao.checks import Checker, check_dataset_convert, check_experiment
from heron.core.config.tao.paths import SECRET_FIELDS, descriptor_of
from heron.v1.tao import dataset_export_config_pb2, experiment_pb2

SpecKind = Literal["experiment", "dataset_convert"]
YAML_SUFFIXES = (".yaml", ".yml")
REDACTED = "<redacted>"
_NAMES: dict[SpecKind, str] = {
    "experiment": "an experiment",
    "dataset_convert": "a dataset-convert",
}

# TAO's `detectnet_v2 inference -e` spec: Heron has no loader for it (see INFERENCE_SPEC_NOTE).
INFERENCE_SECTIONS = frozenset({"inferencer_config", "bbox_handler_config"})
INFERENCE_SPEC_NOTE = (
    "a TAO inference spec (for `tao detectnet_v2 inference -e`): Heron applies none of its "
    "settings (target_classes, image size, confidence and clustering thresholds, box colours): "
    "`heron infer -m MODEL -i IMAGES -o OUT` uses the classes and postprocessing_config saved "
    "with the model from its training spec, and a pipeline uses its nvinfer config"
)

_ROOTS: dict[SpecKind, Descriptor] = {
    "experiment": experiment_pb2.Experiment.DESCRIPTOR,
    "dataset_convert": dataset_export_config_pb2.DatasetExportConfig.DESCRIPTOR,
}


@dataclass
class LoadedSpec:
    """A spec that parsed and passed its checks; `diagnostics` holds the warnings."""

    message: Message  # heron.v1.tao.Experiment or heron.v1.tao.DatasetExportConfig
    kind: SpecKind
    diagnostics: list[Diagnostic] = field(default_factory=list)
    source: Path = Path()


def load_experiment_spec(path: str | Path, *, check_paths: bool = True) -> LoadedSpec:
    """Load a DetectNet_v2 experiment spec (train, retrain, evaluate, prune)."""
    return _load_kind(Path(path), "experiment", check_paths)


def load_dataset_convert_spec(path: str | Path, *, check_paths: bool = True) -> LoadedSpec:
    """Load a dataset-convert spec (`kitti_config { ... }`)."""
    return _load_kind(Path(path), "dataset_convert", check_paths)


def load_any_spec(path: str | Path, *, check_paths: bool = True) -> LoadedSpec:
    """Load either kind, told apart by the spec's top-level fields."""
    path = Path(path)
    text = _read(path)
    return _load(path, detect_kind(_top_level(path, text), path), check_paths, text)


def _load_kind(path: Path, kind: SpecKind, check_paths: bool) -> LoadedSpec:
    """Load as `kind`, refusing at once a file that is plainly the other kind of spec."""
    text = _read(path)
    try:
        found = detect_kind(_top_level(path, text), path)
    except ConfigError:
        found = kind  # neither kind: the full load reports what is wrong field by field
    if found != kind:
        message = f"this is {_NAMES[found]} spec, not {_NAMES[kind]} spec as expected here"
        raise ConfigError([Diagnostic(Severity.ERROR, path, 1, message)])
    return _load(path, kind, check_paths, text)


def top_level_names(path: str | Path) -> list[str]:
    """The names of a spec's top-level sections (ConfigError when unreadable or not YAML)."""
    path = Path(path)
    return _top_level(path, _read(path))


def _top_level(path: Path, text: str) -> list[str]:
    if not _is_yaml(path):
        return text_format.top_level_names(text)
    diags = Diagnostics()
    names = yaml_format.top_level_names(yaml_format.compose(text, path, diags))
    diags.raise_if_errors()
    return names


def is_inference_spec(top_level: list[str]) -> bool:
    """A TAO DetectNet_v2 inference spec (`inferencer_config`, `bbox_handler_config`)."""
    return bool(top_level) and set(top_level) <= INFERENCE_SECTIONS


def check_inference_spec(path: str | Path) -> list[Diagnostic]:
    """An inference spec's findings: its syntax (errors) and one warning that Heron applies
    none of it. Heron has no schema for it, so it is not loaded, but it is not refused either:
    TAO projects ship one beside their training specs (NVIDIA's face-mask sample does)."""
    path = Path(path)
    text = _read(path)
    top_level = _top_level(path, text)  # YAML syntax errors raise here
    if not is_inference_spec(top_level):
        found = ", ".join(top_level) or "nothing"
        message = f"not a TAO inference spec: expected {', '.join(sorted(INFERENCE_SECTIONS))}"
        raise ConfigError([Diagnostic(Severity.ERROR, path, 1, f"{message}; found {found}")])
    if not _is_yaml(path):
        diags = Diagnostics()
        text_format.check_syntax(text, path, diags)
        diags.raise_if_errors()
    return [Diagnostic(Severity.WARNING, path, 1, INFERENCE_SPEC_NOTE, "inferencer_config")]


def detect_kind(top_level: list[str], source: Path) -> SpecKind:
    """'experiment' or 'dataset_convert' from the names a spec starts its sections with."""
    experiment = set(_ROOTS["experiment"].fields_by_name)
    convert = set(_ROOTS["dataset_convert"].fields_by_name)
    names = set(top_level)
    if is_inference_spec(top_level):
        message = f"this is a TAO inference spec, which Heron does not load: {INFERENCE_SPEC_NOTE}"
        raise ConfigError([Diagnostic(Severity.ERROR, source, 1, message)])
    if names & convert and not names & experiment:
        return "dataset_convert"
    if names & experiment:
        return "experiment"
    guess = next((g for n in top_level if (g := closest(n, experiment | convert))), None)
    hint = f" (did you mean {guess!r}?)" if guess else ""
    found = ", ".join(top_level) or "no sections (an empty file, or one that is no mapping)"
    raise ConfigError(
        [
            Diagnostic(
                Severity.ERROR,
                source,
                1 if top_level else 0,
                "not a TAO DetectNet_v2 spec: expected experiment sections (dataset_config, "
                f"model_config, training_config, ...) or kitti_config; found {found}{hint}",
            )
        ]
    )


def _load(path: Path, kind: SpecKind, check_paths: bool, text: str | None = None) -> LoadedSpec:
    text = _read(path) if text is None else text
    diags = Diagnostics()
    message: Message = (
        experiment_pb2.Experiment()
        if kind == "experiment"
        else dataset_export_config_pb2.DatasetExportConfig()
    )
    if _is_yaml(path):
        lines = yaml_format.parse_yaml(yaml_format.compose(text, path, diags), message, path, diags)
    else:
        lines = text_format.parse_text(text, message, path, diags)
    diags.raise_if_errors()
    _check(message, Checker(path, lines, diags), check_paths)
    diags.raise_if_errors()
    return LoadedSpec(message, kind, diags.items, path)


def _check(message: Message, checker: Checker, check_paths: bool) -> None:
    if isinstance(message, experiment_pb2.Experiment):
        check_experiment(message, checker, check_paths)
    elif isinstance(message, dataset_export_config_pb2.DatasetExportConfig):
        check_dataset_convert(message, checker, check_paths)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        message = "spec file not found"
    except IsADirectoryError:
        message = "is a folder, not a spec file"
    except UnicodeDecodeError as e:
        message = f"not UTF-8 text (byte {e.start}): a spec file is text"
    except OSError as e:
        message = f"cannot be read: {e.strerror}"
    raise ConfigError([Diagnostic(Severity.ERROR, path, 0, message)])


def _is_yaml(path: Path) -> bool:
    return path.suffix.lower() in YAML_SUFFIXES


def spec_to_dict(message: Message) -> dict[str, Any]:
    """The spec as plain data with TAO's field names: only fields the spec sets (explicit zeros
    included), enums by name, map entries sorted by key, secrets redacted."""
    data = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return _tidy(data, descriptor_of(message))


def _tidy(data: dict[str, Any], desc: Descriptor) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in data.items():
        fd = desc.fields_by_name[name]
        if fd.full_name in SECRET_FIELDS:
            out[name] = REDACTED
            continue
        sub = fd.message_type
        if sub is None:
            out[name] = value
        elif sub.GetOptions().map_entry:
            value_type = sub.fields_by_name["value"].message_type
            out[name] = {
                k: _tidy(v, value_type) if value_type is not None else v
                for k, v in sorted(value.items())
            }
        elif isinstance(value, list):
            out[name] = [_tidy(item, sub) for item in value]
        else:
            out[name] = _tidy(value, sub)
    return out
