"""Load a Gst-nvinfer config file (key-file with [property]) and its labels file.

`load_nvinfer(path, diags)` collects every finding in `diags` and returns the config, or None
when it has errors; `read_nvinfer(path)` is the same but raises ConfigError.
"""

from __future__ import annotations

import os.path
from pathlib import Path

from pydantic import ValidationError

from heron.core.config.diagnostics import ConfigError, Diagnostics, unknown_name_message
from heron.core.config.keyfile import Group, KeyFile, read_keyfile, split_list
from heron.core.config.keymap import ds_keys, read_group
from heron.core.config.nvinfer_models import (
    ClassAttrs,
    InferProperty,
    NetworkMode,
    NvInferConfig,
    nvinfer_errors,
    nvinfer_warnings,
)
from heron.core.config.validation import Locator, check_paths, report, resolve_paths
from heron.core.int8 import calib_cache

PROPERTY = "property"
CLASS_ATTRS = "class-attrs-"
ALL_CLASSES = "class-attrs-all"
PROPERTY_KEYS = ds_keys(InferProperty)
CLASS_ATTR_KEYS = ds_keys(ClassAttrs)
PROPERTY_ALIASES = {
    "enable-dbscan": ("cluster-mode", "use cluster-mode=1 (DBSCAN) instead"),
}
CLASS_ATTR_ALIASES = {
    "threshold": ("pre-cluster-threshold", "use pre-cluster-threshold instead"),
}


def read_nvinfer(path: Path, *, strict: bool = False) -> tuple[NvInferConfig, Diagnostics]:
    """Load or raise ConfigError (carrying every finding); warnings come back with the config."""
    diags = Diagnostics()
    config = load_nvinfer(path, diags, strict=strict)
    diags.raise_if_errors()
    if config is None:  # pragma: no cover - load_nvinfer returns None only with errors
        raise ConfigError(diags.items)
    return config, diags


def load_nvinfer(path: Path, diags: Diagnostics, *, strict: bool = False) -> NvInferConfig | None:
    path = Path(os.path.abspath(path))
    errors_before = len(diags.errors)
    keyfile = read_keyfile(path, diags)
    if PROPERTY not in keyfile.groups:
        if keyfile.groups or len(diags.errors) == errors_before:
            diags.error(path, 0, "no [property] group: every nvinfer config needs one")
        return None
    locator = Locator(path)
    raw, prop = _raw_config(keyfile, locator, diags)
    _read_labels_into(raw, prop, path, locator, diags, strict=strict)
    if len(diags.errors) > errors_before:
        _validate(raw, locator, diags)  # still report value errors, then give up
        return None
    config = _validate(raw, locator, diags)
    if config is None:
        return None
    resolve_paths(config, path.parent)
    check_paths(config, locator, diags, strict=strict, generated=_generated(config))
    check_calibration(config, locator, diags)
    warn_nvinfer(config, locator, diags)
    return config if len(diags.errors) == errors_before else None


def check_calibration(
    config: NvInferConfig, locator: Locator, diags: Diagnostics, at: tuple[str, ...] = ()
) -> None:
    """The int8-calib-file an INT8 (or best-precision) config runs with must be a TensorRT
    calibration cache, and one of its tensors a tensor of the onnx-file: refused here as the
    inference service refuses it when it quantises the model (a missing file is check_paths').
    `at` is where the config sits in the file (the YAML form embeds it in a GIE)."""
    prop = config.property
    calib = prop.int8_calib_file
    if calib is None or prop.network_mode not in (NetworkMode.INT8, NetworkMode.BEST):
        return
    if not calib.is_file():
        return
    line, name = locator.find((*at, "property", "int8_calib_file"))
    try:
        cache = calib_cache.read(calib)
    except calib_cache.CalibCacheError as e:
        message = f"not a TensorRT calibration cache: {e}"
        diags.error(locator.file, line, message, name)
        return
    onnx_file = prop.onnx_file
    tensors = _calibrated_tensors(onnx_file) if onnx_file is not None else None
    if tensors is None or set(cache.scales) & tensors:
        return
    shown = ", ".join(list(cache.scales)[:3])
    diags.error(
        locator.file,
        line,
        f"none of the {len(cache.scales)} tensors of {str(calib)!r} ({shown}, ...) is a tensor "
        f"of onnx-file {str(onnx_file)!r}: expected the cache `heron calibrate` wrote for this "
        "model",
        name,
    )


def _calibrated_tensors(onnx_file: Path) -> set[str] | None:
    """The tensors a calibration cache may scale (graph inputs and node outputs) of an ONNX
    model that is not quantised already; None when that cannot be told here (no onnx package,
    no such file, not ONNX: other checks report those) or the cache is not used (Q/DQ)."""
    try:
        import onnx
    except ImportError:  # pragma: no cover - the core image may lack onnx
        return None
    from heron.core.int8.qdq import has_qdq

    if not onnx_file.is_file():
        return None
    try:
        model = onnx.load(str(onnx_file), load_external_data=False)
    except Exception:  # onnx raises DecodeError and friends; the model's own check reports it
        return None
    graph = model.graph
    if not graph.node or has_qdq(model):  # empty bytes parse as an empty model
        return None
    return {i.name for i in graph.input} | {o for node in graph.node for o in node.output}


def warn_nvinfer(config: NvInferConfig, locator: Locator, diags: Diagnostics) -> None:
    """The cross-field warnings of a validated nvinfer config, and the settings Heron refuses,
    each on the line of its field."""
    for at, message in nvinfer_warnings(config):
        line, name = locator.find(tuple(at.split(".")))
        diags.warn(locator.file, line, message, name)
    for at, message in nvinfer_errors(config):
        line, name = locator.find(tuple(at.split(".")))
        diags.error(locator.file, line, message, name)


def _generated(config: NvInferConfig) -> frozenset[str]:
    # nvinfer builds the engine on first run when it has a model to build it from.
    prop = config.property
    if prop.onnx_file or prop.tlt_encoded_model or prop.uff_file or prop.model_file:
        return frozenset({"model_engine_file"})
    return frozenset()


def _validate(raw: dict[str, object], locator: Locator, diags: Diagnostics) -> NvInferConfig | None:
    try:
        return NvInferConfig.model_validate(raw)
    except ValidationError as e:
        report(e, locator, diags)
        return None


def _raw_config(
    keyfile: KeyFile, locator: Locator, diags: Diagnostics
) -> tuple[dict[str, object], dict[str, str]]:
    path = keyfile.path
    prop = read_group(
        keyfile.groups[PROPERTY],
        PROPERTY_KEYS,
        file=path,
        prefix="property",
        locator=locator,
        diags=diags,
        aliases=PROPERTY_ALIASES,
    )
    entries = keyfile.groups[PROPERTY].entries
    if "enable-dbscan" in entries and "cluster-mode" not in entries:
        # The alias put enable-dbscan's boolean under cluster_mode: true means DBSCAN (1).
        flag = prop.pop("cluster_mode", "").lower()
        if flag in ("1", "true"):
            prop["cluster_mode"] = "1"
    raw: dict[str, object] = {"property": prop}
    per_class: dict[int, dict[str, str]] = {}
    for name, group in keyfile.groups.items():
        if name == PROPERTY:
            continue
        if name == ALL_CLASSES:
            raw["class_attrs_all"] = _class_group(group, "class_attrs_all", path, locator, diags)
        elif name.startswith(CLASS_ATTRS) and name[len(CLASS_ATTRS) :].isdigit():
            index = int(name[len(CLASS_ATTRS) :])
            per_class[index] = _class_group(group, f"class_attrs.{index}", path, locator, diags)
        elif name.startswith(CLASS_ATTRS):
            diags.error(
                path,
                group.line,
                f"group [{name}]: expected [class-attrs-all] or [class-attrs-<class id>] "
                "with a class id of 0 or more",
            )
        else:
            known = [PROPERTY, ALL_CLASSES, "class-attrs-0"]
            diags.warn(path, group.line, unknown_name_message("group", name, known), name)
    raw["class_attrs"] = per_class
    _inherit_lines(locator, per_class, prop.get("num_detected_classes"))
    return raw, prop


def _class_group(
    group: Group, prefix: str, path: Path, locator: Locator, diags: Diagnostics
) -> dict[str, str]:
    return read_group(
        group,
        CLASS_ATTR_KEYS,
        file=path,
        prefix=prefix,
        locator=locator,
        diags=diags,
        aliases=CLASS_ATTR_ALIASES,
    )


def _inherit_lines(
    locator: Locator, per_class: dict[int, dict[str, str]], count: str | None
) -> None:
    """A class's value that comes from [class-attrs-all] points at that line."""
    inherited = {p: v for p, v in locator.where.items() if p.startswith("class_attrs_all")}
    indices = set(per_class)
    if count is not None and count.isdigit():
        indices |= set(range(int(count)))
    for index in indices:
        for at, where in inherited.items():
            locator.add(at.replace("class_attrs_all", f"class_attrs.{index}", 1), *where)


def _read_labels_into(
    raw: dict[str, object],
    prop: dict[str, str],
    path: Path,
    locator: Locator,
    diags: Diagnostics,
    *,
    strict: bool,
) -> None:
    value = prop.get("labelfile_path")
    if not value:
        return
    labels_path = Path(os.path.normpath(path.parent / value))
    line, name = locator.find(("property", "labelfile_path"))
    locator.add("labels", line, name)  # findings about the labels point at the file's key
    if not labels_path.is_file():
        (diags.error if strict else diags.warn)(
            path, line, f"labels file {str(labels_path)!r} does not exist", name
        )
        return
    rows = read_labels(labels_path, diags)
    classifier = str(prop.get("network_type", "")) in ("1", "classifier") or (
        "network_type" not in prop and str(prop.get("is_classifier", "")).lower() in ("1", "true")
    )
    raw.update(labels_from_rows(rows, classifier=classifier))


def labels_from_rows(rows: list[list[str]], *, classifier: bool) -> dict[str, object]:
    """nvinfer's reading of a labels file's rows, as NvInferConfig fields: a classifier keeps
    one ';'-list per output; a detector takes its classes from one ';'-separated line, else one
    label per line."""
    if classifier:
        return {"classifier_labels": rows}
    if len(rows) == 1 and len(rows[0]) > 1:
        return {"labels": rows[0]}
    return {"labels": [";".join(row) for row in rows]}


def label_rows(lines: list[str]) -> list[list[str]]:
    """Lines of a labels file as `read_labels` splits them (a blank line is one empty label)."""
    return [split_list(line) if line else [""] for line in lines]


def read_labels(path: Path, diags: Diagnostics) -> list[list[str]]:
    """The labels file: one row per line, each row split on ';' (DeepStream's format)."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        diags.error(path, 0, f"labels file is not valid UTF-8 (byte {e.start})")
        return []
    except OSError as e:
        diags.error(path, 0, f"cannot read the labels file: {e.strerror or e}")
        return []
    lines = [line.strip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    for number, line in enumerate(lines, start=1):
        if not line:
            diags.warn(path, number, "blank line: DeepStream counts it as a label with no name")
    if not lines:
        diags.warn(path, 0, "the labels file is empty")
    return label_rows(lines)
