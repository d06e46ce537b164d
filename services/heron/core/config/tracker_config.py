"""Load a DeepStream NvMOT ll-config-file (YAML) into `TrackerParams`, with file:line errors.

Keys Heron reads are checked (type, range); keys of DeepStream's that Heron does not implement
are reported as warnings, and a key that looks like a misspelling of one Heron reads is an
error (a typo must not silently fall back to a default).

In the core, not the tracker service: `heron config check` and `heron run` refuse a [tracker]
group the tracker service would refuse (`check_tracker`), before anything starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from heron.core.config.diagnostics import ConfigError, Diagnostics, closest
from heron.core.config.models import Tracker
from heron.core.config.tracker_params import (
    IGNORED_SECTIONS,
    SECTIONS,
    TrackerKind,
    TrackerParams,
)
from heron.core.config.validation import Locator

# ll-lib-file's name picks the tracker (heron.tracker.factory has the table in words).
LIBRARIES: dict[str, TrackerKind | None] = {
    "libnvds_mot_iou.so": TrackerKind.IOU,
    "libnvds_mot_klt.so": TrackerKind.KLT,
    "libnvds_nvdcf.so": TrackerKind.CORRELATION,
    "libheron_bytetrack.so": TrackerKind.BYTETRACK,
    "libnvds_nvmultiobjecttracker.so": None,  # decided by the config
}


def unknown_library_message(name: str) -> str:
    return f"unknown tracker library {name!r}; expected one of {sorted(LIBRARIES)}"


def check_tracker(tracker: Tracker, locator: Locator, diags: Diagnostics) -> None:
    """An enabled [tracker] as the tracker service reads it: a library name it knows and an
    ll-config-file that loads (its findings are added, each on its own file and line; a
    missing file is check_paths')."""
    if not tracker.enable:
        return
    if tracker.ll_lib_file is not None and tracker.ll_lib_file.name not in LIBRARIES:
        line, name = locator.find(("tracker", "ll_lib_file"))
        diags.error(locator.file, line, unknown_library_message(tracker.ll_lib_file.name), name)
    config = tracker.ll_config_file
    if config is None or not config.is_file():
        return
    try:
        _, _, found = read_ll_config(config)
    except ConfigError as e:
        diags.extend(e.diagnostics)
        return
    diags.extend(found.items)


Lines = dict[tuple[str, ...], int]


def _lines(node: yaml.Node, prefix: tuple[str, ...] = ()) -> Lines:
    """1-based line of every mapping key, by its path."""
    out: Lines = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = (*prefix, str(key.value))
            out[path] = key.start_mark.line + 1
            out.update(_lines(value, path))
    return out


def _aliases(model: type[BaseModel]) -> dict[str, str]:
    return {(f.alias or name): name for name, f in model.model_fields.items()}


def read_ll_config(path: Path) -> tuple[TrackerParams, dict[str, Any], Diagnostics]:
    """The params, the raw document (for the tracker-kind keys) and the warnings."""
    diags = Diagnostics()
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        diags.error(
            path, 0, f"not valid UTF-8 (byte 0x{e.object[e.start]:02x} at offset {e.start})"
        )
        raise ConfigError(diags.items) from None
    except OSError as e:
        diags.error(path, 0, f"cannot read the tracker config: {e.strerror or e}")
        raise ConfigError(diags.items) from None
    if text.startswith("%YAML:"):
        # DeepStream's files open with OpenCV's "%YAML:1.0", which is not a YAML directive;
        # blank it (not drop it) so line numbers stay the file's.
        text = text[text.find("\n") :] if "\n" in text else ""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        diags.error(path, mark.line + 1 if mark else 0, f"not valid YAML: {e}")
        raise ConfigError(diags.items) from None
    if doc is None:
        return TrackerParams(), {}, diags
    if not isinstance(doc, dict):
        diags.error(path, 1, f"expected a mapping of sections, got {type(doc).__name__}")
        raise ConfigError(diags.items)
    lines = _lines(node) if node is not None else {}
    _check_names(path, doc, lines, diags)
    diags.raise_if_errors()
    try:
        params = TrackerParams.model_validate(doc)
    except ValidationError as e:
        for err in e.errors():
            loc = tuple(str(p) for p in err["loc"])
            line = lines.get(loc[:2], lines.get(loc[:1], 0))
            got = err.get("input")
            diags.error(path, line, f"{err['msg']}, got {got!r}", ".".join(loc))
        raise ConfigError(diags.items) from None
    return params, doc, diags


def _check_names(path: Path, doc: dict[str, Any], lines: Lines, diags: Diagnostics) -> None:
    for section, body in doc.items():
        line = lines.get((str(section),), 0)
        if section in IGNORED_SECTIONS:
            diags.warn(path, line, "section not used by Heron's trackers (ignored)", str(section))
            continue
        model = SECTIONS.get(str(section))
        if model is None:
            near = closest(str(section), SECTIONS)
            if near is not None:
                diags.error(path, line, f"unknown section (did you mean {near!r}?)", str(section))
            else:
                diags.warn(path, line, "unknown section (ignored)", str(section))
            continue
        if body is None:
            continue
        if not isinstance(body, dict):
            diags.error(
                path, line, f"expected a mapping of keys, got {type(body).__name__}", str(section)
            )
            continue
        _check_keys(path, str(section), body=body, model=model, lines=lines, diags=diags)


def _check_keys(
    path: Path,
    section: str,
    *,
    body: dict[str, Any],
    model: type[BaseModel],
    lines: Lines,
    diags: Diagnostics,
) -> None:
    known = _aliases(model)
    deepstream_only = _DEEPSTREAM_ONLY.get(section, frozenset())
    for key in body:
        if key in known or key in _KIND_KEYS:
            continue
        where = f"{section}.{key}"
        line = lines.get((section, str(key)), 0)
        near = None if key in deepstream_only else closest(str(key), known)
        if near is not None or section == "Heron":
            hint = f" (did you mean {near!r}?)" if near else f"; expected one of {sorted(known)}"
            diags.error(path, line, f"unknown key{hint}", where)
        else:
            diags.warn(path, line, "DeepStream key not implemented by Heron (ignored)", where)


# DeepStream keys of the sections Heron reads that it does not implement: warned about, while
# an unknown key close to one Heron reads is taken for a typo (an error).
_DEEPSTREAM_ONLY: dict[str, frozenset[str]] = {
    "TargetManagement": frozenset(
        {
            "enableBboxUnClipping",
            "preserveStreamUpdateOrder",
            "outputTerminatedTracks",
            "outputShadowTracks",
        }
    ),
    "DataAssociator": frozenset(
        {
            "minMatchingScore4Overall",
            "minMatchingScore4SizeSimilarity",
            "minMatchingScore4VisualSimilarity",
            "matchingScoreWeight4VisualSimilarity",
            "matchingScoreWeight4SizeSimilarity",
            "matchingScoreWeight4Iou",
            "usePrediction4Assoc",
        }
    ),
    "StateEstimator": frozenset(
        {
            "measurementNoiseVar4Tracker",
            "noiseWeightVar4Loc",
            "noiseWeightVar4Vel",
            "useAspectRatio",
        }
    ),
}

# Keys read only to tell which DeepStream tracker a unified-library config describes.
_KIND_KEYS = frozenset({"stateEstimatorType", "associationMatcherType", "dataAssociatorType"})
