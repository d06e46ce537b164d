"""What kind of config a file is, from its name and content: `heron config check` loads each
kind with its own loader, and `heron run` refuses a file that is not a pipeline by saying what
it is instead."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path

# A header missing its ']' still says what the file is; the key-file parser then reports it
# on its line (GLib's parser names the line too) instead of "cannot tell what this file is".
GROUP_LINE = re.compile(rb"^[ \t]*\[(?:([^\[\]\r\n]+)\]|([A-Za-z][\w-]*))[ \t\r]*$", re.MULTILINE)
APP_GROUPS = re.compile(
    r"application|streammux|primary-gie|secondary-gie\d+|source\d+|sink\d+|tiled-display|osd"
    r"|tracker|tests|message-broker"
)
YAML_TOP_KEY = re.compile(rb"^([A-Za-z_][\w-]*)\s*:", re.MULTILINE)
PIPELINE_KEYS = {
    "application",
    "sources",
    "streammux",
    "primary_gie",
    "secondary_gies",
    "tracker",
    "tiled_display",
    "osd",
    "sinks",
    "message_broker",
    "tests",
}
# The sections of a DeepStream tracker config (ll-config-file): heron.core.config.tracker_params'
# SECTIONS and IGNORED_SECTIONS, named here so telling a file's kind loads no pydantic model.
TRACKER_SECTIONS = {
    "BaseConfig",
    "TargetManagement",
    "DataAssociator",
    "StateEstimator",
    "Heron",
    "TrajectoryManagement",
    "VisualTracker",
    "ReID",
    "ObjectModelProjection",
    "Segmentation",
}


class FileKind(StrEnum):
    DEEPSTREAM_APP = "deepstream-app"
    NVINFER = "nvinfer"
    PIPELINE_YAML = "pipeline-yaml"
    TAO_SPEC = "tao-spec"
    TRACKER = "tracker"  # an ll-config-file (YAML)


def detect_kind(path: Path, data: bytes) -> FileKind | None:
    """What a file is, from its name and content (key-file groups, YAML, protobuf text)."""
    if data.startswith(b"%YAML:"):
        return FileKind.TRACKER  # OpenCV's header, which DeepStream's tracker configs open with
    if path.suffix.lower() in (".yaml", ".yml"):
        # TAO specs may be YAML too; a pipeline starts with its own group names, a tracker
        # config with its sections.
        top = yaml_top_keys(data)
        if top & PIPELINE_KEYS:
            return FileKind.PIPELINE_YAML
        return FileKind.TRACKER if top & TRACKER_SECTIONS else FileKind.TAO_SPEC
    groups = [
        (whole or bare).decode("utf-8", "replace").strip()
        for whole, bare in GROUP_LINE.findall(data)
    ]
    if "property" in groups or any(g.startswith("class-attrs-") for g in groups):
        return FileKind.NVINFER
    if any(APP_GROUPS.fullmatch(g) for g in groups):
        return FileKind.DEEPSTREAM_APP
    if not groups and (b"{" in data or b":" in data):
        return FileKind.TAO_SPEC
    return None


def yaml_top_keys(data: bytes) -> set[str]:
    """The names of a YAML file's top-level keys, read without parsing the file."""
    return {m.decode("utf-8", "replace") for m in YAML_TOP_KEY.findall(data)}


def not_a_pipeline(path: Path, data: bytes) -> str | None:
    """Why `path` is no pipeline config (it is an nvinfer config, a TAO spec, ...), naming what
    was expected and what the file is; None when it may be one (its loader checks the rest)."""
    kind = detect_kind(path, data)
    expected = "expected a deepstream-app config ([sourceN], [sinkN], ...) or a pipeline YAML"
    if kind is FileKind.NVINFER:
        return (
            f"{expected}; this is an nvinfer config ([property]): name it in the pipeline's "
            "[primary-gie] config-file= and give that pipeline config instead"
        )
    if kind is FileKind.TRACKER:
        return (
            f"{expected}; this is a tracker config (BaseConfig, TargetManagement, ...): name it "
            "in the pipeline's [tracker] ll-config-file= and give that pipeline config instead"
        )
    if kind is FileKind.TAO_SPEC and path.suffix.lower() in (".yaml", ".yml"):
        found = ", ".join(sorted(yaml_top_keys(data))) or "none"
        return (
            f"{expected} (top-level keys such as sources, sinks, primary_gie); found the "
            f"top-level keys {found}: a TAO spec goes to `heron train -e`"
        )
    if kind is FileKind.TAO_SPEC:
        return (
            f"{expected}; this looks like a TAO spec (protobuf text, no [group] headers): "
            "`heron train -e` takes it"
        )
    return None
