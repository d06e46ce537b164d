"""Load a deepstream-app config file into a `Pipeline` (with its nvinfer configs parsed).

`load_deepstream_app(path, diags)` collects every finding and returns the pipeline, or None when
it has errors; `read_deepstream_app(path)` raises ConfigError instead.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from heron.core.config.diagnostics import ConfigError, Diagnostics, unknown_name_message
from heron.core.config.file_uri import file_uri_path, is_file_uri, resolve_config_file_uri
from heron.core.config.gie import check_gies
from heron.core.config.keyfile import Group, read_keyfile
from heron.core.config.keymap import ds_keys, read_group
from heron.core.config.models import (
    Application,
    Gie,
    MessageBroker,
    Osd,
    Pipeline,
    PluginType,
    Streammux,
    Tests,
    TiledDisplay,
    Tracker,
    pipeline_warnings,
)
from heron.core.config.nvinfer import load_nvinfer, read_labels
from heron.core.config.nvinfer_models import ClassAttrs, InferProperty, NvInferConfig
from heron.core.config.sinks import (
    SINK_KINDS,
    EglSink,
    FakeSink,
    FileSink,
    MsgBrokerSink,
    RtspSink,
    SinkKind,
    sink_kind,
)
from heron.core.config.sources import (
    SOURCE_KINDS,
    CameraSource,
    MultiUriSource,
    RtspSource,
    SourceKind,
    UriSource,
    source_kind,
)
from heron.core.config.tracker_config import check_tracker
from heron.core.config.validation import Locator, check_paths, report, resolve_paths

SINGLE_GROUPS: dict[str, tuple[str, type[BaseModel]]] = {
    "application": ("application", Application),
    "streammux": ("streammux", Streammux),
    "tracker": ("tracker", Tracker),
    "tiled-display": ("tiled_display", TiledDisplay),
    "osd": ("osd", Osd),
    "message-broker": ("message_broker", MessageBroker),
    "tests": ("tests", Tests),
}
SOURCE_MODELS: dict[SourceKind, type[BaseModel]] = {
    SourceKind.CAMERA_V4L2: CameraSource,
    SourceKind.URI: UriSource,
    SourceKind.MULTI_URI: MultiUriSource,
    SourceKind.RTSP: RtspSource,
}
SINK_MODELS: dict[SinkKind, type[BaseModel]] = {
    SinkKind.FAKE: FakeSink,
    SinkKind.EGL: EglSink,
    SinkKind.FILE: FileSink,
    SinkKind.RTSP: RtspSink,
    SinkKind.MSGBROKER: MsgBrokerSink,
}
# deepstream-app groups Heron does not implement (yet): known, so not "unknown".
UNSUPPORTED = re.compile(
    r"source-list|source-attr-all|pre-process|secondary-pre-process\d*|nvds-analytics|ds-example"
    r"|dewarper|message-converter|message-consumer\d+|img-save|audio-transform|audio-classifier"
)
INDEXED = re.compile(r"(source|sink|secondary-gie)(\d+)")
# `labels` is filled from labelfile-path's file: no key of its own.
GIE_KEYS = ds_keys(Gie, exclude=("nvinfer", "labels", "bbox_border_colors", "bbox_bg_colors"))
CLASS_COLOR = re.compile(r"(bbox-border-color|bbox-bg-color)(\d+)")
NVINFER_MODELS = (NvInferConfig, InferProperty, ClassAttrs)
KNOWN_GROUPS = [*SINGLE_GROUPS, "primary-gie", "source0", "sink0", "secondary-gie0"]


def read_deepstream_app(path: Path, *, strict: bool = False) -> tuple[Pipeline, Diagnostics]:
    diags = Diagnostics()
    pipeline = load_deepstream_app(path, diags, strict=strict)
    diags.raise_if_errors()
    if pipeline is None:  # pragma: no cover - None only with errors
        raise ConfigError(diags.items)
    return pipeline, diags


def is_headless() -> bool:
    return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def load_deepstream_app(
    path: Path, diags: Diagnostics, *, strict: bool = False, headless: bool | None = None
) -> Pipeline | None:
    path = Path(os.path.abspath(path))
    errors_before = len(diags.errors)
    keyfile = read_keyfile(path, diags)
    if not keyfile.groups and len(diags.errors) > errors_before:
        return None  # unreadable: nothing more to say
    locator = Locator(path)
    reader = _Reader(path, locator, diags, is_headless() if headless is None else headless)
    for name, group in keyfile.groups.items():
        reader.group(name, group)
    raw = reader.raw
    load_gie_configs(raw, path.parent, diags, strict=strict)
    try:
        pipeline = Pipeline.model_validate(raw)
    except ValidationError as e:
        report(e, locator, diags)
        return None
    check_pipeline_paths(pipeline, path.parent, locator, diags, strict=strict)
    check_uris(pipeline, locator, diags, strict=strict)
    warn_pipeline(pipeline, locator, diags)
    check_gies(pipeline, locator, diags)
    check_tracker(pipeline.tracker, locator, diags)
    # Syntax errors, a broken nvinfer file or --strict: the findings stand, the model does not.
    return pipeline if len(diags.errors) == errors_before else None


def check_pipeline_paths(
    pipeline: Pipeline, base: Path, locator: Locator, diags: Diagnostics, *, strict: bool
) -> None:
    """Resolve the pipeline's relative paths against `base` and report the missing ones (the
    nvinfer files were checked when they were loaded; engines may be built on first run)."""
    resolve_paths(pipeline, base, skip=NVINFER_MODELS)
    missing = missing_gie_configs(pipeline)
    for at, path in missing.items():
        line, name = locator.find(tuple(at.split(".")))
        message = (
            f"file {str(path)!r} does not exist: an enabled GIE runs the nvinfer config it "
            "names, and the pipeline cannot start without it"
        )
        diags.error(locator.file, line, message, name)
    check_paths(
        pipeline,
        locator,
        diags,
        strict=strict,
        skip=NVINFER_MODELS,
        generated=frozenset({"model_engine_file"}),
        exclude=frozenset(missing),
    )


def missing_gie_configs(pipeline: Pipeline) -> dict[str, Path]:
    """`config_file` of each enabled nvinfer GIE whose file does not exist, by field path (a
    GIE whose nvinfer config is embedded, as the YAML form may have it, needs no file)."""
    gies = {"primary_gie": pipeline.primary_gie}
    gies.update({f"secondary_gies.{i}": g for i, g in pipeline.secondary_gies.items()})
    return {
        f"{at}.config_file": gie.config_file
        for at, gie in gies.items()
        if gie is not None
        and gie.enable
        and gie.nvinfer is None
        and gie.plugin_type is PluginType.NVINFER
        and gie.config_file is not None
        and not gie.config_file.is_file()
    }


def warn_pipeline(pipeline: Pipeline, locator: Locator, diags: Diagnostics) -> None:
    """The cross-field warnings of a validated pipeline, each on the line of its field."""
    for at, message in pipeline_warnings(pipeline):
        line, name = locator.find(tuple(at.split(".")))
        diags.warn(locator.file, line, message, name)


class _Reader:
    """Turns each group into its raw dict under `raw`, reporting group-level problems."""

    def __init__(self, path: Path, locator: Locator, diags: Diagnostics, headless: bool) -> None:
        self.path, self.locator, self.diags, self.headless = path, locator, diags, headless
        self.raw: dict[str, Any] = {"sources": {}, "sinks": {}, "secondary_gies": {}}

    def group(self, name: str, group: Group) -> None:
        if not name:
            return  # a malformed header, already reported
        if name in SINGLE_GROUPS:
            field, model = SINGLE_GROUPS[name]
            self.raw[field] = self._read(group, ds_keys(model), field)
        elif name == "primary-gie":
            self.raw["primary_gie"] = self._gie(group, "primary_gie")
        elif (match := INDEXED.fullmatch(name)) is not None:
            kind, index = match.group(1), int(match.group(2))
            if kind == "source":
                self.locator.add("sources", group.line, group.name)
                self._source(group, index)
            elif kind == "sink":
                self.locator.add("sinks", group.line, group.name)
                self._sink(group, index)
            else:
                self.raw["secondary_gies"][index] = self._gie(group, f"secondary_gies.{index}")
        elif UNSUPPORTED.fullmatch(name):
            self.diags.warn(
                self.path, group.line, f"group [{name}] is not supported by Heron; it is ignored"
            )
        else:
            digits = "".join(ch for ch in name if ch.isdigit()) or "0"
            known = [*SINGLE_GROUPS, "primary-gie"] + [
                f"{g}{digits}" for g in ("source", "sink", "secondary-gie")
            ]
            self.diags.warn(self.path, group.line, unknown_name_message("group", name, known), name)

    def _read(
        self,
        group: Group,
        keys: dict[str, str],
        prefix: str,
        *,
        other_keys: set[str] | None = None,
        kind: str = "",
    ) -> dict[str, Any]:
        return read_group(
            group,
            keys,
            file=self.path,
            prefix=prefix,
            locator=self.locator,
            diags=self.diags,
            other_keys=other_keys or set(),
            kind=kind,
        )

    def _kind(self, group: Group, parse: Any, prefix: str) -> Any:
        """The group's kind, or None; a bad or missing type= is left for validation to report
        (as the discriminator error, on the type= line) so no finding is lost or doubled."""
        entry = group.entries.get("type")
        line = entry.line if entry else group.line
        self.locator.add(f"{prefix}.type", line, f"{group.name}.type")
        self.locator.add(prefix, line, f"{group.name}.type")
        try:
            return parse(entry.value if entry else None)
        except ValueError:
            return None

    def _source(self, group: Group, index: int) -> None:
        kind = self._kind(group, source_kind, f"sources.{index}")
        if kind is None:
            entry = group.entries.get("type")
            self.raw["sources"][index] = {"type": entry.value if entry else None}
            return
        keys = ds_keys(SOURCE_MODELS[kind])
        others = {k for m in SOURCE_MODELS.values() for k in ds_keys(m)} - set(keys)
        code = next(c for c, k in SOURCE_KINDS.items() if k is kind)
        raw = self._read(
            group,
            keys,
            f"sources.{index}",
            other_keys=others,
            kind=f"a type={code} ({kind}) source",
        )
        resolve_file_uri(raw, self.path.parent)
        self.raw["sources"][index] = raw

    def _sink(self, group: Group, index: int) -> None:
        kind = self._kind(group, sink_kind, f"sinks.{index}")
        if kind is None:
            entry = group.entries.get("type")
            self.raw["sinks"][index] = {"type": entry.value if entry else None}
            return
        enabled = group.entries.get("enable")
        if kind is SinkKind.EGL and self.headless and enabled and enabled.value not in ("0", ""):
            self.diags.warn(
                self.path,
                group.entries["type"].line,
                "type=2 (EGL window) needs a display and none is available (no DISPLAY or "
                "WAYLAND_DISPLAY); this sink runs as type=1 (fake) instead",
                f"{group.name}.type",
            )
            kind = SinkKind.FAKE
        keys = ds_keys(SINK_MODELS[kind])
        others = {k for m in SINK_MODELS.values() for k in ds_keys(m)} - set(keys)
        code = next(c for c, k in SINK_KINDS.items() if k is kind)
        raw = self._read(
            group, keys, f"sinks.{index}", other_keys=others, kind=f"a type={code} ({kind}) sink"
        )
        raw["type"] = kind.value
        self.raw["sinks"][index] = raw

    def _gie(self, group: Group, prefix: str) -> dict[str, Any]:
        colors = Group(group.name, group.line)
        plain = Group(group.name, group.line)
        for key, entry in group.entries.items():
            (colors if CLASS_COLOR.fullmatch(key) else plain).entries[key] = entry
        raw = self._read(plain, GIE_KEYS, prefix)
        labels = group.entries.get("labelfile-path")
        if labels is not None:  # findings about the group's labels point at its file's key
            self.locator.add(f"{prefix}.labels", labels.line, f"{group.name}.labelfile-path")
        for key, entry in colors.entries.items():
            match = CLASS_COLOR.fullmatch(key)
            if match is None:  # pragma: no cover - split above
                continue
            table = (
                "bbox_border_colors" if match.group(1) == "bbox-border-color" else "bbox_bg_colors"
            )
            class_id = int(match.group(2))
            raw.setdefault(table, {})[class_id] = entry.value
            self.locator.add(f"{prefix}.{table}.{class_id}", entry.line, f"{group.name}.{key}")
        return raw


_BOOL = TypeAdapter(bool)


def gie_enabled(gie: dict[str, Any]) -> bool:
    """DeepStream's rule: a GIE group runs only with enable=1 (no enable key means off).

    The raw value is read as the models read it (`1`/`0`, `true`/`false`, YAML booleans), so
    the loaders and `Gie.enable` never disagree; a malformed value counts as off here and is
    reported by validation on its own line.
    """
    try:
        return _BOOL.validate_python(gie.get("enable", False))
    except ValidationError:
        return False


def load_gie_configs(raw: dict[str, Any], base: Path, diags: Diagnostics, *, strict: bool) -> None:
    """Parse the nvinfer `config_file` of each enabled GIE into its `nvinfer`, and its own
    `labelfile_path` into its `labels` (both loaders).

    Disabled GIEs are skipped whole, as deepstream-app skips them; a GIE that already carries
    an embedded `nvinfer` or `labels` (the YAML form) keeps them; an nvinferserver config is
    not read as an nvinfer one (check_gies refuses it); missing files are reported by
    check_paths.
    """
    secondaries = raw.get("secondary_gies")
    gies = [raw.get("primary_gie")]
    if isinstance(secondaries, dict):
        gies.extend(secondaries.values())
    for gie in gies:
        if not isinstance(gie, dict) or not gie_enabled(gie):
            continue
        if "labels" not in gie and (labels_path := _file(base, gie.get("labelfile_path"))):
            gie["labels"] = [";".join(row) for row in read_labels(labels_path, diags)]
        if gie.get("nvinfer") is not None or _nvinferserver(gie):
            continue
        if config_path := _file(base, gie.get("config_file")):
            gie["nvinfer"] = load_nvinfer(config_path, diags, strict=strict)


def _file(base: Path, value: object) -> Path | None:
    """A raw path value that names an existing file, resolved against `base`."""
    if not isinstance(value, str | Path) or not str(value):
        return None
    path = Path(os.path.normpath(base / value))
    return path if path.is_file() else None


def _nvinferserver(gie: dict[str, Any]) -> bool:
    return str(gie.get("plugin_type", "")).strip().lower() in ("1", "nvinferserver")


def resolve_file_uri(source: dict[str, Any], base: Path) -> None:
    """A source's `file:` URI as deepstream-app reads it, in the raw source dict: relative
    `file://video.mp4` against the config's folder, and every absolute form (`file:/abs`,
    `file://localhost/abs`) spelled `file:///abs` (see `heron.core.config.file_uri`)."""
    uri = source.get("uri")
    if isinstance(uri, str) and is_file_uri(uri):
        source["uri"] = resolve_config_file_uri(uri, base)


def check_uris(pipeline: Pipeline, locator: Locator, diags: Diagnostics, *, strict: bool) -> None:
    """An enabled source whose file: URI names no file: a warning on the uri line naming the
    field, an error when `strict` (the same rule as every other referenced file)."""
    for index, source in pipeline.sources.items():
        uri = getattr(source, "uri", "")
        if not (source.enable and is_file_uri(uri)):
            continue
        path = file_uri_path(uri)  # valid: the model accepted it
        if not Path(path).exists():
            line, name = locator.find(("sources", index, "uri"))
            message = f"file {path!r} named by the URI does not exist"
            (diags.error if strict else diags.warn)(locator.file, line, message, name)
