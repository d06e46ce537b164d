"""From pydantic errors to `file:line` diagnostics; relative paths; files that must exist.

Every loader builds a raw dict plus a `Locator` (field path → line and the name as the user
wrote it), validates with the models, and turns each pydantic error into a Diagnostic on the
line of the field concerned, saying what was expected and what was found.
"""

from __future__ import annotations

import os.path
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from heron.core.config.diagnostics import Diagnostics
from heron.core.config.problems import CROSS_FIELD
from heron.core.config.sinks import SinkKind
from heron.core.config.sources import SourceKind

_TAGS = {k.value for k in SourceKind} | {k.value for k in SinkKind}
Loc = tuple[int | str, ...]
SECRET_FIELDS = frozenset({"tlt_model_key", "password"})


@dataclass
class Locator:
    """Where each field of a loaded file came from: dotted path → (line, name as written)."""

    file: Path
    where: dict[str, tuple[int, str]] = field(default_factory=dict)

    def add(self, path: str, line: int, name: str) -> None:
        self.where.setdefault(path, (line, name))

    def find(self, loc: Loc) -> tuple[int, str]:
        """The line and name of the deepest known prefix of `loc` (tags of unions skipped)."""
        parts = [str(p) for i, p in enumerate(loc) if not (p in _TAGS and i < len(loc) - 1)]
        for end in range(len(parts), 0, -1):
            hit = self.where.get(".".join(parts[:end]))
            if hit is not None:
                name = hit[1]
                if end < len(parts):
                    name = f"{name}.{'.'.join(parts[end:])}"
                return hit[0], name
        return 0, ".".join(parts)


def report(exc: ValidationError, locator: Locator, diags: Diagnostics, base: Loc = ()) -> None:
    """One diagnostic per pydantic error (and per cross-field problem); the same finding on the
    same line once (a [class-attrs-all] value every class inherits fails once per class)."""
    seen: set[tuple[int, str, str]] = set()

    def add(line: int, message: str, name: str) -> None:
        if (line, message, name) not in seen:
            seen.add((line, message, name))
            diags.error(locator.file, line, message, name)

    for err in exc.errors():
        loc: Loc = (*base, *err["loc"])
        if err["type"] == CROSS_FIELD:
            for at, message in err.get("ctx", {}).get("problems", []):
                sub = tuple(p for p in at.split(".") if p)
                line, name = locator.find((*loc, *sub))
                add(line, message, name)
            continue
        if err["type"] in ("source_type", "sink_type"):
            loc = (*loc, "type")  # point at the type itself, not the whole group
        line, name = locator.find(loc)
        message = describe(err)
        if any(str(part) in SECRET_FIELDS for part in loc):
            message = str(err["msg"]).removeprefix("Value error, ")  # never echo a secret
        add(line, message, name)


def describe(err: Any) -> str:
    """pydantic's message, made to say what it expected and what it found."""
    kind, message, found = err["type"], str(err["msg"]), err.get("input")
    message = message.removeprefix("Value error, ")
    if kind == "missing":
        return "missing: this key is required here"
    if kind in ("source_type", "sink_type") and isinstance(found, dict):
        raw = found.get("type")
        return f"{message}; found {'nothing' if raw is None else repr(raw)}"
    if "found" in message:
        return message
    if kind == "extra_forbidden":
        return "unknown key; it is not allowed here"
    if isinstance(found, BaseModel | dict):
        return message
    return f"{message}; found {found!r}"


# --- unknown keys in structured (YAML) input -----------------------------------------------


def _unwrap(tp: Any) -> Any:
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
    return tp


def _tag_of(tp: Any) -> str | None:
    if get_origin(tp) is Annotated:
        for meta in get_args(tp)[1:]:
            tag = getattr(meta, "tag", None)
            if isinstance(tag, str):
                return tag
    return None


def model_at(root: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model class found by following `loc` from `root` (dict keys and union tags too)."""
    tp: Any = root
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            info = tp.model_fields.get(str(part))
            if info is None:
                return None
            tp = info.annotation
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        elif get_origin(tp) in (Union, types.UnionType):
            tp = next((a for a in get_args(tp) if _tag_of(a) == part), None)
            if tp is None:
                return None
        else:
            return None
    tp = _unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def drop_key(data: Any, loc: Loc) -> None:
    """Remove the key at `loc` from raw nested dicts (union tags in `loc` are skipped)."""
    node = data
    for part in loc[:-1]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, dict) and str(part) in node:
            node = node[str(part)]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
    if isinstance(node, dict):
        node.pop(loc[-1], None)


# --- paths ------------------------------------------------------------------------------------


def _path_fields(model: BaseModel, prefix: str) -> Iterator[tuple[str, str, FieldInfo, BaseModel]]:
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        at = f"{prefix}{name}"
        if isinstance(value, Path):
            yield at, name, info, model
        elif isinstance(value, BaseModel):
            yield from _path_fields(value, f"{at}.")
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, BaseModel):
                    yield from _path_fields(item, f"{at}.{key}.")


def resolve_paths(model: BaseModel, base: Path, skip: tuple[type[BaseModel], ...] = ()) -> None:
    """Make relative Path fields absolute against `base` (the config file's folder), in place."""
    for _, name, _, owner in _path_fields(model, ""):
        if isinstance(owner, skip):
            continue
        value = getattr(owner, name)
        if not value.is_absolute():
            setattr(owner, name, Path(_normalize(base / value)))


def _normalize(path: Path) -> str:
    # Like realpath without requiring the file to exist: folds 'a/../b' but keeps symlinks.
    return os.path.normpath(path)


HERON_LIBRARY_PREFIX = "libheron_"  # e.g. libheron_bytetrack.so: a name, never a file


def check_paths(
    model: BaseModel,
    locator: Locator,
    diags: Diagnostics,
    *,
    strict: bool,
    prefix: str = "",
    skip: tuple[type[BaseModel], ...] = (),
    generated: frozenset[str] = frozenset(),
    exclude: frozenset[str] = frozenset(),
) -> None:
    """Referenced files that do not exist: warnings, or errors when `strict`.

    Outputs (fields marked `output`) and `generated` field names (files the pipeline builds,
    such as a TensorRT engine) only need their folder to exist. A library (fields marked
    `library`) named `libheron_*` is one of Heron's own, which exist nowhere as files: it needs
    nothing (DeepStream's own libraries are files DeepStream would load: checked). Field paths
    in `exclude` were reported by the caller already.
    """
    for at, name, info, owner in _path_fields(model, prefix):
        if isinstance(owner, skip) or at in exclude:
            continue
        path: Path = getattr(owner, name)
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if extra.get("library") and path.name.startswith(HERON_LIBRARY_PREFIX):
            continue
        writes = bool(extra.get("output")) or name in generated
        target = path.parent if writes else path
        if target.exists():
            continue
        line, shown = locator.find(tuple(at.split(".")))
        if writes:
            message = f"folder {str(target)!r} (for {str(path)!r}) does not exist"
        else:
            message = f"file {str(path)!r} does not exist"
        (diags.error if strict else diags.warn)(locator.file, line, message, shown)
