"""The YAML form of a pipeline: `to_yaml(model)` writes it, `load_pipeline_yaml` reads it back.

The YAML holds the normalized models (snake_case names, enum names, RGBA lists, absolute
paths), so a deepstream-app config converted once can be kept and edited as YAML. Errors name
the YAML line (from the parser's node marks). Secrets print as '**********' unless asked for.
"""

from __future__ import annotations

import os.path
from enum import Enum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr, ValidationError

from heron.core.config.deepstream import (
    check_pipeline_paths,
    check_uris,
    load_gie_configs,
    resolve_file_uri,
    warn_pipeline,
)
from heron.core.config.diagnostics import ConfigError, Diagnostics, unknown_name_message
from heron.core.config.gie import check_gies
from heron.core.config.models import Pipeline
from heron.core.config.nvinfer import check_calibration
from heron.core.config.nvinfer_models import nvinfer_errors, nvinfer_warnings
from heron.core.config.tracker_config import check_tracker
from heron.core.config.validation import (
    Locator,
    drop_key,
    model_at,
    report,
)

MASK = "**********"
_MAX_PASSES = 8  # each pass drops the unknown keys pydantic found; nesting is shallow


def to_yaml(model: BaseModel, *, reveal_secrets: bool = False) -> str:
    """The model as YAML; unset (None) fields are left out, secrets masked unless revealed."""
    data = _plain(model.model_dump(exclude_none=True), reveal_secrets)
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


class _Dumper(yaml.SafeDumper):
    """Block style, except short lists of scalars (colours, dims) on one line."""


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = all(not isinstance(item, dict | list) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)


def _plain(value: Any, reveal: bool) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value() if reveal else MASK
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        if isinstance(value.get("type"), Enum):  # a source or sink: its kind reads best first
            value = {"type": value["type"], **value}
        return {k: _plain(v, reveal) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, reveal) for v in value]
    return value


def read_pipeline_yaml(path: Path, *, strict: bool = False) -> tuple[Pipeline, Diagnostics]:
    diags = Diagnostics()
    pipeline = load_pipeline_yaml(path, diags, strict=strict)
    diags.raise_if_errors()
    if pipeline is None:  # pragma: no cover - None only with errors
        raise ConfigError(diags.items)
    return pipeline, diags


def load_pipeline_yaml(path: Path, diags: Diagnostics, *, strict: bool = False) -> Pipeline | None:
    path = Path(os.path.abspath(path))
    errors_before = len(diags.errors)
    parsed = _parse(path, diags)
    if parsed is None:
        return None
    data, locator = parsed
    sources = data.get("sources")
    for source in sources.values() if isinstance(sources, dict) else ():
        if isinstance(source, dict):
            resolve_file_uri(source, path.parent)
    embedded = _embedded_nvinfer(data)
    load_gie_configs(data, path.parent, diags, strict=strict)
    pipeline = _validate(data, locator, diags)
    if pipeline is None:
        return None
    check_pipeline_paths(pipeline, path.parent, locator, diags, strict=strict)
    check_uris(pipeline, locator, diags, strict=strict)
    warn_pipeline(pipeline, locator, diags)
    _warn_embedded_nvinfer(pipeline, embedded, locator, diags)
    check_gies(pipeline, locator, diags)
    check_tracker(pipeline.tracker, locator, diags)
    for at in _masked_secrets(pipeline, ""):
        line, name = locator.find(tuple(at.split(".")))
        message = f"the secret is the mask {MASK!r}: this YAML was written without secrets"
        diags.warn(path, line, message, name)
    return pipeline if len(diags.errors) == errors_before else None


def _embedded_nvinfer(data: dict[str, Any]) -> set[str]:
    """Field paths of the GIEs whose nvinfer config is written in the YAML itself (the others
    are read from their config_file, whose loader reports that file's warnings)."""
    gies: dict[str, Any] = {"primary_gie": data.get("primary_gie")}
    secondaries = data.get("secondary_gies")
    if isinstance(secondaries, dict):
        gies.update({f"secondary_gies.{i}": g for i, g in secondaries.items()})
    return {at for at, gie in gies.items() if isinstance(gie, dict) and gie.get("nvinfer")}


def _warn_embedded_nvinfer(
    pipeline: Pipeline, embedded: set[str], locator: Locator, diags: Diagnostics
) -> None:
    gies = {"primary_gie": pipeline.primary_gie}
    gies.update({f"secondary_gies.{i}": g for i, g in pipeline.secondary_gies.items()})
    for at in sorted(embedded):
        gie = gies.get(at)
        if gie is None or gie.nvinfer is None:
            continue
        for field, message in nvinfer_warnings(gie.nvinfer):
            line, name = locator.find((*at.split("."), "nvinfer", *field.split(".")))
            diags.warn(locator.file, line, message, name)
        for field, message in nvinfer_errors(gie.nvinfer):
            line, name = locator.find((*at.split("."), "nvinfer", *field.split(".")))
            diags.error(locator.file, line, message, name)
        check_calibration(gie.nvinfer, locator, diags, at=(*at.split("."), "nvinfer"))


def _masked_secrets(model: BaseModel, prefix: str) -> list[str]:
    """Paths of secrets whose value is the mask `to_yaml` writes in their place."""
    found: list[str] = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        items = value.items() if isinstance(value, dict) else [("", value)]
        for key, item in items:
            at = f"{prefix}{name}" + (f".{key}" if key != "" else "")
            if isinstance(item, SecretStr) and item.get_secret_value() == MASK:
                found.append(at)
            elif isinstance(item, BaseModel):
                found.extend(_masked_secrets(item, f"{at}."))
    return found


def _parse(path: Path, diags: Diagnostics) -> tuple[dict[str, Any], Locator] | None:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        diags.error(
            path, 0, f"not valid UTF-8 (byte 0x{e.object[e.start]:02x} at offset {e.start})"
        )
        return None
    except OSError as e:
        diags.error(path, 0, f"cannot read the file: {e.strerror or e}")
        return None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        line = mark.line + 1 if mark is not None else 0
        problem = getattr(e, "problem", None) or str(e)
        diags.error(path, line, f"not valid YAML: {problem}")
        return None
    if not isinstance(data, dict) or node is None:
        diags.error(path, 1, f"expected a mapping of pipeline groups, found {type(data).__name__}")
        return None
    locator = Locator(path)
    _index(node, "", locator)
    return data, locator


def _index(node: yaml.Node, prefix: str, locator: Locator) -> None:
    """Record the line of every key in the YAML tree under its dotted path."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            at = f"{prefix}{key_node.value}"
            locator.add(at, key_node.start_mark.line + 1, at)
            _index(value_node, f"{at}.", locator)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            at = f"{prefix}{index}"
            locator.add(at, item.start_mark.line + 1, at)
            _index(item, f"{at}.", locator)


def _validate(data: dict[str, Any], locator: Locator, diags: Diagnostics) -> Pipeline | None:
    """Validate; unknown keys are warnings (with the closest name) and are dropped."""
    for _ in range(_MAX_PASSES):
        try:
            return Pipeline.model_validate(data)
        except ValidationError as e:
            unknown = [err for err in e.errors() if err["type"] == "extra_forbidden"]
            if not unknown:
                report(e, locator, diags)
                return None
            for err in unknown:
                loc = err["loc"]
                owner = model_at(Pipeline, loc[:-1])
                names = list(owner.model_fields) if owner else []
                line, name = locator.find(loc)
                diags.warn(
                    locator.file, line, unknown_name_message("key", str(loc[-1]), names), name
                )
                drop_key(data, loc)
    diags.error(locator.file, 0, "too many unknown keys nested in one another")
    return None
