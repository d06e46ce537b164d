"""The plan made into Helm chart values: `heron config plan CONFIG --format helm`.

One plan, three runners (DESIGN.md): the chart (charts/heron) renders the plan into Kubernetes
objects and never plans again — Go templates cannot read a deepstream-app config, and a second
planner in templates would be a second source of truth. So this module writes, per pipeline:

    name: <the plan's pipeline name>          # a DNS label: Kubernetes object names
    config: {file: app.txt, text: "..."}      # the config as given, byte for byte
    files: {labels.txt: "...", ...}           # text files it names by relative path
    shm: {sizeLimit: 2496Mi}                  # the pod's /dev/shm, sized from the plan's rings
    rtspPorts: [8554]                         # the config's RTSP sinks (type=4)
    plan: {...}                               # the PipelinePlan, made for a pod (below)

What a pod needs beyond the plan is added here, as `heron.run.plan` adds what a local run needs:
paths where the pod mounts the config (/etc/heron/pipeline), a distinct metrics port per
service (the containers of one pod share its network namespace), gRPC servers and the RTSP
sink listening on every address (a Service reaches them from outside the pod). The Redis URL
is never written: the chart hands it to each container in its environment, from a Secret.

Model files (ONNX, engines, calibration caches) never go into values: the pod reads them from
the models volume at the absolute paths the config gives (or Triton serves them), so a model
named by a relative path is refused, naming file, line and key. Planning here reads the
config, the files it names and a file source's header; it writes nothing and starts nothing.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any, get_args

import yaml
from pydantic import BaseModel

from heron.core.config.deepstream import (
    INDEXED,
    SINK_MODELS,
    SOURCE_MODELS,
    gie_enabled,
)
from heron.core.config.diagnostics import ConfigError, Diagnostic, Diagnostics
from heron.core.config.file_uri import is_file_uri
from heron.core.config.keyfile import read_keyfile
from heron.core.config.models import Application, Gie, MessageBroker, Pipeline, Streammux, Tracker
from heron.core.config.nvinfer_models import InferProperty
from heron.core.config.pipeline_file import YAML_SUFFIXES, load_pipeline
from heron.core.config.sinks import RtspSink
from heron.core.config.sources import SourceKind, source_kind
from heron.core.framestore.layout import Layout
from heron.core.grpc.settings import split_listen
from heron.core.plan.frame_rate import probe_frame_rate
from heron.core.plan.model import PipelinePlan, PlannedService, decided
from heron.core.plan.options import PlanOptions
from heron.core.plan.planner import FrameRate, plan_loaded
from heron.core.plan.settings.ingest import FrameLocation, IngestSettings
from heron.core.plan.settings.streammux import MuxConfig, StreammuxSettings
from heron.core.plan.sources import plan_sources

# Where the chart mounts things (charts/heron/templates/pipeline-deployment.yaml says the same).
POD_PIPELINE_DIR = PurePosixPath("/etc/heron/pipeline")
POD_SETTINGS_DIR = PurePosixPath("/etc/heron/settings")
# One HTTP endpoint (/metrics, /healthz, /readyz) per container; the pipeline's containers
# share one pod, so each has its own port. Control runs in a pod of its own.
METRICS_PORTS = {
    "ingest": 9400,
    "streammux": 9401,
    "inference": 9402,
    "tracker": 9403,
    "overlay": 9404,
    "control": 9400,
}
ANY_ADDRESS = "0.0.0.0"
# A live camera's frame size is known only once it streams: rings are sized as if 1080p.
ASSUMED_FRAME = (1920, 1080)
BGR_BYTES = 3
# Room for a second set of rings: a writer killed with SIGKILL (OOM) leaves its segments in the
# pod's /dev/shm until the pod is replaced, and its restart makes new ones.
SHM_HEADROOM = 2
SHM_STEP = 64 * 1024 * 1024  # sizeLimit rounded up to 64 MiB
MIB = 1024 * 1024
# Kubernetes stores an object in at most 1 MiB: the config and its files share one ConfigMap.
CONFIGMAP_MAX_BYTES = 1_000_000
# A pipeline's name is part of every object name it makes (with the release's): a short label.
NAME_MAX = 30
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
# Names of the chart's other parts: a pipeline so named would share their objects' names.
_RESERVED = re.compile(r"^(redis|triton|monitoring|pipelines|operator)(-|$)")
# A file's path under the pipeline folder; each segment a ConfigMap key's characters, no "." or
# "..". values.schema.json holds the same pattern.
_REL_PATH = re.compile(r"^(\.?[A-Za-z0-9_-][A-Za-z0-9._-]*/)*\.?[A-Za-z0-9_-][A-Za-z0-9._-]*$")


class RefKind(StrEnum):
    """What a path in a config names, which decides what the chart does with it."""

    TEXT = "text"  # shipped beside the config when relative (nvinfer config, labels, ...)
    MODEL = "model"  # on the models volume, by absolute path
    MEDIA = "media"  # a file source: on a volume, by absolute path
    OUTPUT = "output"  # written by the pipeline: an absolute path on a mounted volume
    SECRET = "secret"  # TLS keys: never in a ConfigMap
    LIBRARY = "library"  # a DeepStream library: Heron reads its name only (tracker kind)


# Every Path field of the config models, by name (tests/core/plan/test_deploy.py checks that
# none is missing, so a new path key cannot slip into a pod unclassified).
FIELD_KINDS: dict[str, RefKind] = {
    "config_file": RefKind.TEXT,
    "labelfile_path": RefKind.TEXT,
    "ll_config_file": RefKind.TEXT,
    "msg_conv_config": RefKind.TEXT,
    "msg_broker_config": RefKind.TEXT,
    "custom_network_config": RefKind.TEXT,
    "model_engine_file": RefKind.MODEL,
    "onnx_file": RefKind.MODEL,
    "int8_calib_file": RefKind.MODEL,
    "tlt_encoded_model": RefKind.MODEL,
    "uff_file": RefKind.MODEL,
    "model_file": RefKind.MODEL,
    "proto_file": RefKind.MODEL,
    "mean_file": RefKind.MODEL,
    "tls_cafile": RefKind.SECRET,
    "tls_certfile": RefKind.SECRET,
    "tls_keyfile": RefKind.SECRET,
    "gie_kitti_output_dir": RefKind.OUTPUT,
    "kitti_track_output_dir": RefKind.OUTPUT,
    "infer_raw_output_dir": RefKind.OUTPUT,
    "output_file": RefKind.OUTPUT,
    "debug_payload_dir": RefKind.OUTPUT,
    "smart_rec_dir_path": RefKind.OUTPUT,
    "ll_lib_file": RefKind.LIBRARY,
    "proto_lib": RefKind.LIBRARY,
    "msg_broker_proto_lib": RefKind.LIBRARY,
    "msg_conv_msg2p_lib": RefKind.LIBRARY,
    "custom_lib_path": RefKind.LIBRARY,
}

# The config's groups whose keys may name files, with the models that define those keys; the
# second item says whether the group counts only when enabled (as deepstream-app reads it).
_GROUPS: dict[str, tuple[tuple[type[BaseModel], ...], bool]] = {
    "application": ((Application,), False),
    "streammux": ((Streammux,), False),
    "tracker": ((Tracker,), True),
    "message_broker": ((MessageBroker,), False),
    "primary_gie": ((Gie,), True),
    "secondary_gie": ((Gie,), True),
    "source": (tuple(SOURCE_MODELS.values()), True),
    "sink": (tuple(SINK_MODELS.values()), True),
}


class DeployError(ValueError):
    """The values cannot be written (pipeline names, several pipelines that clash)."""


@dataclass(frozen=True)
class Reference:
    """One path a config gives: where it is written and what it names."""

    file: Path  # the file that names it (absolute)
    line: int  # 0 when unknown
    field: str  # as a finding names it: "primary-gie.config-file", "sources.0.uri"
    value: str  # as written
    kind: RefKind

    @property
    def relative(self) -> bool:
        if self.kind is RefKind.MEDIA:  # deepstream-app's file://rel/clip.mp4
            rest = self.value[len("file:") :]
            return rest.startswith("//") and not rest[2:].startswith("/")
        return not Path(self.value).is_absolute()

    @property
    def target(self) -> Path:
        value = self.value[len("file://") :] if self.kind is RefKind.MEDIA else self.value
        return Path(os.path.normpath(self.file.parent / value))


@dataclass(frozen=True)
class _Group:
    """A config group as raw values by field name, each with its line and printed name."""

    label: str  # "primary-gie" / "primary_gie"
    kind: str  # a key of _GROUPS
    values: Mapping[str, tuple[object, int, str]]  # field → (raw value, line, finding's name)


def path_fields(model: type[BaseModel], *, deep: bool = False) -> Iterator[str]:
    """Names of the fields of `model` that hold a Path; `deep`: of the models in it too (in
    unions, lists and dicts), as far down as they go."""
    for name, info in model.model_fields.items():
        if Path in _types_in(info.annotation):
            yield name
        if deep:
            for inner in _types_in(info.annotation):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    yield from path_fields(inner, deep=True)


def _types_in(annotation: object) -> set[object]:
    """`annotation` and every type argument in it, recursively."""
    found = {annotation}
    for arg in get_args(annotation):
        found |= _types_in(arg)
    return found


def references(config: Path) -> tuple[list[Reference], list[Diagnostic]]:
    """Every path the config gives (following the nvinfer configs it ships), and the problems a
    pod would have with it: a V4L2 camera, a password."""
    config = Path(os.path.abspath(config))
    found: list[Reference] = []
    problems = Diagnostics()
    for group in _groups(config):
        enabled_only = _GROUPS[group.kind][1]
        if enabled_only and not gie_enabled({"enable": group.values.get("enable", (False,))[0]}):
            continue
        found.extend(_group_references(config, group, problems))
    return found, problems.items


def _group_references(config: Path, group: _Group, problems: Diagnostics) -> Iterator[Reference]:
    models, _ = _GROUPS[group.kind]
    fields = {name for model in models for name in path_fields(model)}
    for name, (value, line, shown) in group.values.items():
        if name in fields and isinstance(value, str) and value:
            yield Reference(config, line, shown, value, FIELD_KINDS[name])
    if group.kind == "source":
        yield from _source_references(config, group, problems)
    if group.kind == "message_broker" and group.values.get("password", ("",))[0]:
        _, line, shown = group.values["password"]
        problems.error(
            config, line,
            "a password in the pipeline config would be stored in a ConfigMap, which is not "
            "a secret: leave it out of the config the chart deploys",
            shown,
        )  # fmt: skip
    if group.kind in ("primary_gie", "secondary_gie"):
        yield from _nvinfer_references(config, group)


def _source_references(config: Path, group: _Group, problems: Diagnostics) -> Iterator[Reference]:
    kind, line, shown = group.values.get("type", (None, 0, group.label))
    try:
        parsed = source_kind(kind)
    except ValueError:
        parsed = None  # the loader reports it
    if parsed is SourceKind.CAMERA_V4L2:
        problems.error(
            config, line,
            "a V4L2 camera (type=1) reads /dev/videoN of the machine it runs on; the chart "
            "mounts no devices into the pod: serve the camera over RTSP (type=4) instead",
            shown,
        )  # fmt: skip
    uri, line, shown = group.values.get("uri", (None, 0, ""))
    if isinstance(uri, str) and is_file_uri(uri):
        yield Reference(config, line, shown, uri, RefKind.MEDIA)


def _nvinfer_references(config: Path, group: _Group) -> Iterator[Reference]:
    """The nvinfer config a GIE names (when shipped: a relative path), or embeds (YAML)."""
    plugin = str(group.values.get("plugin_type", ("",))[0]).strip().lower()
    if plugin in ("1", "nvinferserver"):
        return  # a Triton (protobuf text) config: shipped as text, not read as nvinfer
    embedded = group.values.get("nvinfer", (None,))[0]
    if isinstance(embedded, dict):
        prop = embedded.get("property")
        if isinstance(prop, dict):
            label = f"{group.label}.nvinfer.property"
            values = {str(k): (v, 0, f"{label}.{k}") for k, v in prop.items()}
            yield from _property_references(config, values)
        return
    value, _, _ = group.values.get("config_file", (None, 0, ""))
    if not isinstance(value, str) or not value or Path(value).is_absolute():
        return
    nvinfer = Path(os.path.normpath(config.parent / value))
    if not nvinfer.is_file():
        return  # reported as a missing text file
    keyfile = read_keyfile(nvinfer, Diagnostics())
    prop_group = keyfile.groups.get("property")
    if prop_group is None:
        return
    values = {
        key.replace("-", "_"): (entry.value, entry.line, f"property.{key}")
        for key, entry in prop_group.entries.items()
    }
    yield from _property_references(nvinfer, values)


def _property_references(
    file: Path, values: Mapping[str, tuple[object, int, str]]
) -> Iterator[Reference]:
    fields = set(path_fields(InferProperty))
    for name, (value, line, shown) in values.items():
        if name in fields and isinstance(value, str) and value:
            yield Reference(file, line, shown, value, FIELD_KINDS[name])


def _groups(config: Path) -> list[_Group]:
    if config.suffix.lower() in YAML_SUFFIXES:
        return _yaml_groups(config)
    keyfile = read_keyfile(config, Diagnostics())  # its findings are the loader's to report
    groups = []
    for name, group in keyfile.groups.items():
        kind = _group_kind(name)
        if kind is None:
            continue
        values = {
            key.replace("-", "_"): (entry.value, entry.line, f"{name}.{key}")
            for key, entry in group.entries.items()
        }
        groups.append(_Group(name, kind, values))
    return groups


def _group_kind(name: str) -> str | None:
    """The _GROUPS kind of a key-file group ("primary-gie", "source0", ...), None for others."""
    snake = name.replace("-", "_")
    if snake in ("application", "streammux", "tracker", "message_broker", "primary_gie"):
        return snake
    match = INDEXED.fullmatch(name)
    return match.group(1).replace("-", "_") if match else None


def _yaml_groups(config: Path) -> list[_Group]:
    text = config.read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    lines = _yaml_lines(node) if node is not None else {}
    if not isinstance(data, dict):
        return []
    groups: list[_Group] = []

    def add(label: str, kind: str, raw: object, at: tuple[str, ...]) -> None:
        if isinstance(raw, dict):
            values = {
                str(k): (v, lines.get((*at, str(k)), 0), f"{label}.{k}") for k, v in raw.items()
            }
            groups.append(_Group(label, kind, values))

    for name in ("application", "streammux", "tracker", "message_broker", "primary_gie"):
        add(name, name, data.get(name), (name,))
    for table, kind in (
        ("sources", "source"),
        ("sinks", "sink"),
        ("secondary_gies", "secondary_gie"),
    ):
        entries = data.get(table)
        for index, raw in entries.items() if isinstance(entries, dict) else ():
            add(f"{table}.{index}", kind, raw, (table, str(index)))
    return groups


def _yaml_lines(node: yaml.Node, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], int]:
    """1-based line of every mapping key, by its path (keys as text)."""
    out: dict[tuple[str, ...], int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = (*prefix, str(key.value))
            out[path] = key.start_mark.line + 1
            out.update(_yaml_lines(value, path))
    return out


# --- what a pod can and cannot read ----------------------------------------------------------


@dataclass(frozen=True)
class Shipped:
    """The config and the text files it names by relative path, under their common folder."""

    root: Path  # the folder mounted at POD_PIPELINE_DIR
    config: str  # the config's path under it
    text: str  # the config's text, byte for byte (no newline translation)
    files: dict[str, str]  # path under it → text (the config itself excluded)

    @property
    def pod_config(self) -> PurePosixPath:
        return POD_PIPELINE_DIR / self.config


def configmap_key(path: str) -> str:
    """The ConfigMap key a shipped file is stored under (the chart mounts it back at `path`)."""
    return path.replace("/", "_")


def ship(config: Path) -> Shipped:
    """What goes into the pod's pipeline folder; ConfigError naming file, line and key for
    every path a pod could not follow."""
    config = Path(os.path.abspath(config))
    refs, problems = references(config)
    diags = Diagnostics(list(problems))
    texts: dict[Path, str] = {}
    for ref in refs:
        if not ref.relative:
            continue  # read in the pod where it is: the models volume, or the image
        if ref.kind is RefKind.TEXT:
            text = _read_text(ref, diags)
            if text is not None:
                texts.setdefault(ref.target, text)
        elif ref.kind is not RefKind.LIBRARY:
            diags.error(ref.file, ref.line, _RELATIVE[ref.kind].format(value=ref.value), ref.field)
    config_text = _read_text(Reference(config, 0, "", str(config), RefKind.TEXT), diags)
    diags.raise_if_errors()
    assert config_text is not None  # pragma: no cover - else an error was raised
    root = Path(os.path.commonpath([config.parent, *(t.parent for t in texts)]))
    files = {t.relative_to(root).as_posix(): text for t, text in texts.items() if t != config}
    relative = config.relative_to(root).as_posix()
    shipped = Shipped(root, relative, config_text, dict(sorted(files.items())))
    _check_names(config, shipped, [config_text, *files.values()])
    return shipped


_ON_VOLUME = "put it on a volume the pod mounts and name it by its absolute path (docs/deploy.md)"
_RELATIVE = {
    RefKind.MODEL: "model file {value!r} is named by a relative path: model files are never "
    "put into the chart's values; put it on the models volume (values: models.existingClaim, "
    "mounted at /models) and name it by its absolute path, e.g. /models/<name>/...",
    RefKind.MEDIA: "file source {value!r} is named by a relative path: media files are never "
    "put into the chart's values; " + _ON_VOLUME,
    RefKind.OUTPUT: "output {value!r} is named by a relative path: the pod's pipeline folder is "
    "read-only; " + _ON_VOLUME,
    RefKind.SECRET: "TLS file {value!r} is named by a relative path: keys are never put into a "
    "ConfigMap; mount them from a Secret and name them by their absolute path",
}


def _read_text(ref: Reference, diags: Diagnostics) -> str | None:
    path = ref.target
    try:
        data = path.read_bytes()
    except OSError as e:
        reason = "does not exist" if isinstance(e, FileNotFoundError) else (e.strerror or str(e))
        diags.error(
            ref.file, ref.line,
            f"file {ref.value!r} ({path}) {reason}: the chart ships the text files a config "
            "names by relative path beside it, so each must be readable where you plan",
            ref.field,
        )  # fmt: skip
        return None
    problem = _not_text(data)
    if problem is not None:
        diags.error(
            ref.file, ref.line,
            f"file {ref.value!r} is not a text file ({problem}): the chart ships the files a "
            "config names by relative path as text in a ConfigMap; a binary file (a model, an "
            "engine) belongs on the models volume, named by its absolute path",
            ref.field,
        )  # fmt: skip
        return None
    return data.decode("utf-8")


def _not_text(data: bytes) -> str | None:
    nul = data.find(b"\0")
    if nul >= 0:
        return f"a NUL byte at offset {nul}"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"not UTF-8 at offset {e.start}"
    return None


def _check_names(config: Path, shipped: Shipped, texts: Iterable[str]) -> None:
    diags = Diagnostics()
    keys: dict[str, str] = {}
    for path in (shipped.config, *shipped.files):
        if not _REL_PATH.match(path):
            diags.error(
                config, 0,
                f"{path!r} cannot be mounted from a ConfigMap: file and folder names may hold "
                "only letters, digits, '.', '_' and '-' (and not be '.' or '..')",
            )  # fmt: skip
        elif keys.setdefault(configmap_key(path), path) != path:
            diags.error(
                config, 0,
                f"{path!r} and {keys[configmap_key(path)]!r} would share the ConfigMap key "
                f"{configmap_key(path)!r}: rename one of them",
            )  # fmt: skip
    size = sum(len(t.encode("utf-8")) for t in texts)
    if size > CONFIGMAP_MAX_BYTES:
        diags.error(
            config, 0,
            f"the config and the files it names hold {size} bytes; a ConfigMap holds at most "
            f"{CONFIGMAP_MAX_BYTES}: put the big ones on the models volume (absolute paths)",
        )  # fmt: skip
    diags.raise_if_errors()


# --- the plan made for a pod -------------------------------------------------------------------


def for_pod(service: PlannedService) -> PlannedService:
    """The service's settings with what a pod adds: its metrics port, gRPC servers and the RTSP
    sink on every address (paths are rewritten in the values: see `pod_plan_data`)."""
    ours = decided(service.settings)
    ours["metrics"] = {**ours.get("metrics", {}), "port": METRICS_PORTS[service.service]}
    grpc = ours.get("grpc")
    if isinstance(grpc, dict) and "listen" in grpc:
        _, port = split_listen(str(grpc["listen"]))
        if port == 0:
            raise DeployError(
                f"{service.service}: gRPC port 0 (a free one) cannot be a Service's port"
            )
        grpc["listen"] = f"{ANY_ADDRESS}:{port}"
    if service.service == "overlay":
        ours["rtsp_address"] = ANY_ADDRESS
    settings = type(service.settings).model_validate(ours)
    return service.model_copy(update={"settings": settings})


def pod_plan_data(plan: PipelinePlan, shipped: Shipped) -> dict[str, Any]:
    """The plan as JSON-compatible data, its paths where the pod mounts the config."""
    plan = plan.model_copy(update={"services": [for_pod(s) for s in plan.services]})
    data = plan.model_dump(mode="json")
    local, pod = str(shipped.root), str(POD_PIPELINE_DIR)
    data["config"] = str(shipped.pod_config)
    for service in data["services"]:
        if "pipeline_config" in service["settings"]:
            service["settings"]["pipeline_config"] = str(shipped.pod_config)
    for warning in data["warnings"]:
        warning["file"] = _in_pod(warning["file"], local, pod)
        warning["message"] = warning["message"].replace(local + os.sep, pod + "/")
    return data


def _in_pod(path: str, local: str, pod: str) -> str:
    relative = os.path.relpath(path, local)
    if relative.startswith(".."):
        return path  # not shipped: where it is in the pod too
    return str(PurePosixPath(pod) / Path(relative).as_posix())


def shm_bytes(pipeline: Pipeline, plan: PipelinePlan) -> int:
    """The shared-memory rings the plan's writers make: ingest's (per stream, at the camera's
    size, else 1080p) and the muxer's (its output size)."""
    total = 0
    ingest = plan.service("ingest")
    settings = ingest.settings if ingest is not None else None
    if isinstance(settings, IngestSettings) and settings.frame_location is FrameLocation.SHM:
        for source in plan_sources(pipeline, check_exists=False):
            width = source.spec.width or ASSUMED_FRAME[0]
            height = source.spec.height or ASSUMED_FRAME[1]
            total += Layout(settings.shm_slots, width * height * BGR_BYTES).total
    muxer = plan.service("streammux")
    mux_settings = muxer.settings if muxer is not None else None
    if isinstance(mux_settings, StreammuxSettings) and mux_settings.output_location == "shm":
        mux = MuxConfig(pipeline.streammux, pipeline.stream_count)
        frame = pipeline.streammux.width * pipeline.streammux.height * BGR_BYTES
        total += Layout(mux.ring_slots(mux_settings.ring_batches), frame).total
    return total


def shm_size_limit(ring_bytes: int) -> str:
    """The /dev/shm sizeLimit for rings of `ring_bytes`: twice them, in 64 MiB steps."""
    steps = max(1, math.ceil(ring_bytes * SHM_HEADROOM / SHM_STEP))
    return f"{steps * SHM_STEP // MIB}Mi"


def rtsp_ports(pipeline: Pipeline) -> list[int]:
    """The ports of the config's enabled RTSP sinks (type=4), each a Service port."""
    return sorted(
        {s.rtsp_port for s in pipeline.sinks.values() if s.enable and isinstance(s, RtspSink)}
    )


# --- values ------------------------------------------------------------------------------------


def _everything(_module: str) -> bool:
    return True  # the chart's images hold every service


def pipeline_name(config: Path) -> str:
    """A pipeline named after its config file: `Lobby_Cams.txt` → `lobby-cams`."""
    name = re.sub(r"[^a-z0-9]+", "-", config.stem.lower()).strip("-")[:NAME_MAX].strip("-")
    if not name or _RESERVED.match(name):
        raise DeployError(f"{config}: cannot name a pipeline after it: give --pipeline NAME")
    return name


def check_name(name: str) -> str:
    """A pipeline name fit for the chart's object names, or DeployError saying why not."""
    if len(name) > NAME_MAX or not _NAME.match(name):
        raise DeployError(
            f"pipeline name {name!r}: expected at most {NAME_MAX} lower-case letters, digits "
            "or '-', starting and ending with a letter or digit (it is part of Kubernetes "
            "object names)"
        )
    if _RESERVED.match(name):
        raise DeployError(
            f"pipeline name {name!r}: names starting with redis, triton, monitoring, pipelines "
            "or operator are the chart's other parts; choose another with --pipeline"
        )
    return name


@dataclass(frozen=True)
class PipelineValues:
    """One entry of the chart's `pipelines`, with the plan it holds."""

    name: str
    plan: PipelinePlan  # as planned here (local paths)
    entry: dict[str, Any]


def pipeline_values(
    config: Path,
    options: PlanOptions,
    *,
    name: str,
    frame_rate: FrameRate = probe_frame_rate,
) -> PipelineValues:
    """The chart's values for one pipeline config (ConfigError naming file and line, or
    ValueError, when it cannot run in a pod)."""
    check_name(name)
    config = config.resolve()
    options = options.model_copy(update={"pipeline": name})
    pipeline, findings = load_pipeline(config)  # the config's own errors first
    shipped = ship(config)  # then what a pod could not read
    plan = plan_loaded(
        config, pipeline, findings.warnings, options, installed=_everything, frame_rate=frame_rate
    )
    entry: dict[str, Any] = {
        "name": name,
        "config": {"file": shipped.config, "text": shipped.text},
        "files": shipped.files,
        "shm": {"sizeLimit": shm_size_limit(shm_bytes(pipeline, plan))},
    }
    if plan.service("overlay") is not None:
        entry["rtspPorts"] = rtsp_ports(pipeline)
    entry["plan"] = pod_plan_data(plan, shipped)
    return PipelineValues(name, plan, entry)


def helm_values(
    configs: list[Path],
    options: PlanOptions,
    *,
    name: str | None = None,
    frame_rate: FrameRate = probe_frame_rate,
) -> tuple[dict[str, Any], list[PipelineValues]]:
    """`{"pipelines": [...]}` for one or several configs, each named after its file (or `name`,
    for one config). Several pipelines share the release's Redis, so they must not share a
    stream id, and at most one may be live (the muxer batches every frame stream it sees)."""
    if name is not None and len(configs) != 1:
        raise DeployError("--pipeline names one pipeline: with several configs each is named "
                          "after its file")  # fmt: skip
    made: list[PipelineValues] = []
    for config in configs:
        try:
            one = pipeline_values(
                config, options, name=name or pipeline_name(config), frame_rate=frame_rate
            )
        except (ConfigError, DeployError):
            raise  # they name the file already
        except ValueError as e:  # a source, an output file, the backend's options
            raise DeployError(f"{config}: {e}") from None
        made.append(one)
    _check_together(made)
    return {"pipelines": [m.entry for m in made]}, made


def _check_together(made: list[PipelineValues]) -> None:
    names: dict[str, Path] = {}
    streams: dict[str, str] = {}
    for m in made:
        if m.name in names:
            raise DeployError(
                f"{names[m.name]} and {m.plan.config} are both named {m.name!r}: rename a file"
            )
        names[m.name] = m.plan.config
        for stream in m.plan.streams:
            if stream in streams:
                raise DeployError(
                    f"pipelines {streams[stream]!r} and {m.name!r} both have stream {stream!r}: "
                    "frame streams are named by stream id alone (heron:frames:<id>) in the "
                    "Redis they share; give each camera its own id (source-id= in [sourceN])"
                )
            streams[stream] = m.name
    live = [m.name for m in made if m.plan.topology == "live"]
    if len(live) > 1:
        raise DeployError(
            f"pipelines {live} are all live: each stream muxer batches every frame stream of "
            "its Redis, so live pipelines need a Redis each: install one release per pipeline "
            "(docs/deploy.md, 'Several pipelines')"
        )


HEADER = """\
# Heron chart values: {names}, written by `heron config plan --format helm` (docs/deploy.md).
# The chart renders this plan into Kubernetes objects; it does not plan again. After editing a
# config, write this file again and `helm upgrade`. Deployment choices (the models volume, GPUs,
# resources, Service types) go under pipelineDefaults in a values file of your own.
"""


def dump_values(values: Mapping[str, Any]) -> str:
    """The values as YAML: multi-line texts as literal blocks, so they read as the files do."""
    names = ", ".join(str(p["name"]) for p in values.get("pipelines", []))
    body = yaml.dump(
        dict(values), Dumper=_ValuesDumper, sort_keys=False, allow_unicode=True, width=100
    )
    return HEADER.format(names=names or "no pipeline") + body


class _ValuesDumper(yaml.SafeDumper):
    """Literal blocks for texts of several lines (PyYAML quotes those it cannot keep exact)."""


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_ValuesDumper.add_representer(str, _represent_str)
