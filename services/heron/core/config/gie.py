"""What a GIE runs with: its nvinfer config with the keys of its deepstream-app group on top.

deepstream-app hands some keys of `[primary-gie]` / `[secondary-gieN]` to the nvinfer element as
properties (batch-size, interval, unique-id, gpu-id, model-engine-file, process-mode and, for
the primary, input-tensor-meta); a property set on the element wins over the same key in the
element's config-file. `effective_nvinfer` applies them the same way, plus the group's
labelfile-path, and is the one place where a group and its nvinfer config are merged.
`gie_findings` says which keys of an enabled `[primary-gie]` Heron cannot honour, so that no
key is parsed and then dropped without a word (docs/config.md has the table).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from heron.core.config.diagnostics import Diagnostic, Diagnostics, Severity
from heron.core.config.models import Gie, Pipeline, PluginType
from heron.core.config.nvinfer import label_rows, labels_from_rows
from heron.core.config.nvinfer_models import (
    ENGINE_NOT_RUN,
    NetworkType,
    NvInferConfig,
    ProcessMode,
    engine_not_run_message,
    labels_warnings,
)
from heron.core.config.validation import Locator

# Group keys that win over the config's only when the group has them (deepstream-app's
# `is_*_set`). labelfile-path is no element property (deepstream-app reads that file itself),
# but Heron names objects from the group's file, so its path wins too.
_SET_WHEN_GIVEN = ("batch_size", "interval", "gie_unique_id", "model_engine_file", "labelfile_path")


def effective_nvinfer(gie: Gie, *, primary: bool = True) -> NvInferConfig:
    """The nvinfer settings `gie` runs with (a copy; `gie.nvinfer` stays the file's own).

    `primary` says which group it is: deepstream-app forces process-mode (1 in [primary-gie],
    2 in [secondary-gieN]) and passes operate-on-* only to secondaries.
    """
    config = gie.nvinfer
    if config is None:
        raise ValueError("the GIE's config-file was not read (disabled, missing or broken)")
    given = {k: getattr(gie, k) for k in _SET_WHEN_GIVEN}
    update: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    update["process_mode"] = ProcessMode.PRIMARY if primary else ProcessMode.SECONDARY
    if "gpu_id" in gie.model_fields_set:
        update["gpu_id"] = gie.gpu_id
    if primary:
        # deepstream-app sets input-tensor-meta on the primary element whether the group has
        # the key or not, so the group's value (default off) always wins.
        update["input_tensor_from_meta"] = gie.input_tensor_meta
    else:
        if gie.operate_on_gie_id is not None:
            update["operate_on_gie_id"] = gie.operate_on_gie_id
        if gie.operate_on_class_ids:
            update["operate_on_class_ids"] = list(gie.operate_on_class_ids)
    fields: dict[str, Any] = {"property": config.property.model_copy(update=update)}
    if gie.labelfile_path is not None or gie.labels:
        classifier = config.property.network_type is NetworkType.CLASSIFIER
        # The group's file replaces the config's: no label of the config's file is kept.
        fields.update(labels=[], classifier_labels=[])
        fields.update(labels_from_rows(label_rows(gie.labels), classifier=classifier))
    return config.model_copy(update=fields, deep=True)


def check_gies(pipeline: Pipeline, locator: Locator, diags: Diagnostics) -> None:
    """Report `gie_findings` of the enabled [primary-gie], each on the line of its key, and
    refuse nvinferserver in any enabled GIE (its config is not an nvinfer one)."""
    gies = {"primary_gie": pipeline.primary_gie}
    gies.update({f"secondary_gies.{i}": g for i, g in pipeline.secondary_gies.items()})
    for at, gie in gies.items():
        if gie is None or not gie.enable:
            continue
        found = gie_findings(gie) if at == "primary_gie" else _secondary_findings(gie)
        for field, severity, message in found:
            where = field
            if field == "labels" and f"{at}.labels" not in locator.where:
                where = "labelfile_path"  # labels read from the file, not written in the YAML
            line, name = locator.find((*at.split("."), *where.split(".")))
            add = diags.error if severity is Severity.ERROR else diags.warn
            add(locator.file, line, message, name)


def gie_findings(gie: Gie) -> list[tuple[str, Severity, str]]:
    """(field, severity, message) for each key of an enabled [primary-gie] that Heron does not
    apply as deepstream-app does. Keys not named here are applied (`effective_nvinfer`, the
    overlay's colours)."""
    found = _plugin_findings(gie)
    if gie.nvinfer is not None:
        found += _engine_findings(gie)
        if gie.labelfile_path is not None or gie.labels:
            effective = effective_nvinfer(gie)
            found += [("labels", Severity.WARNING, m) for _, m in labels_warnings(effective)]
    for key in ("operate_on_gie_id", "operate_on_class_ids"):
        if getattr(gie, key):
            name = key.replace("_", "-")
            message = (
                f"{name} is a [secondary-gieN] key: deepstream-app ignores it here, as Heron does"
            )
            found.append((key, Severity.WARNING, message))
    found += [(key, Severity.WARNING, message) for key, message in _unsupported(gie)]
    return found


SECONDARY_NOT_RUN = (
    "an enabled [secondary-gieN] is not supported: Heron does not run secondary inference "
    "engines yet, so its model would never run and its labels never reach the metadata. Set "
    "enable=0 (or remove the group) to run the pipeline without it"
)


def _secondary_findings(gie: Gie) -> list[tuple[str, Severity, str]]:
    """An enabled [secondary-gieN]: refused, not dropped (Heron runs the primary GIE only)."""
    return [("enable", Severity.ERROR, SECONDARY_NOT_RUN), *_plugin_findings(gie)]


def _plugin_findings(gie: Gie) -> list[tuple[str, Severity, str]]:
    if gie.plugin_type is not PluginType.NVINFERSERVER:
        return []
    message = (
        "plugin-type=1 (nvinferserver) is not supported: Heron reads nvinfer configs only. "
        "Give the group an nvinfer config (plugin-type=0); to serve the model from Triton, set "
        "the inference service's backend.kind: triton"
    )
    return [("plugin_type", Severity.ERROR, message)]


def _engine_findings(gie: Gie) -> list[tuple[str, Severity, str]]:
    """The group's model-engine-file wins over the config's, as in deepstream-app; Heron
    cannot load a TensorRT engine, so it says what it runs instead, or that it has nothing."""
    engine = gie.model_engine_file
    if engine is None or gie.nvinfer is None:
        return []
    onnx = gie.nvinfer.property.onnx_file
    if onnx is None:
        message = engine_not_run_message(engine, gie.config_file)
        return [("model_engine_file", Severity.WARNING, message)]
    message = (
        f"model-engine-file {str(engine)!r} is not used: Heron cannot load a TensorRT engine "
        f"and runs the config's onnx-file {str(onnx)!r} instead (DeepStream would load this "
        "engine, or build it from that ONNX file when it cannot)"
    )
    return [("model_engine_file", Severity.WARNING, message)]


def _unsupported(gie: Gie) -> list[tuple[str, str]]:
    """Set keys with no counterpart in Heron (their defaults are what Heron does anyway)."""
    found: list[tuple[str, str]] = []
    if gie.gpu_id != 0:
        found.append(
            (
                "gpu_id",
                f"gpu-id {gie.gpu_id} is not used: the inference service's backend settings "
                "choose the device (backend.kind: torch, device: cuda:N), not the pipeline config",
            )
        )
    if gie.input_tensor_meta:
        found.append(
            (
                "input_tensor_meta",
                "input-tensor-meta=1 takes tensors that a [pre-process] group prepares, which "
                "Heron does not support: the detector preprocesses whole frames as the nvinfer "
                "config says",
            )
        )
    if gie.infer_raw_output_dir is not None:
        found.append(
            (
                "infer_raw_output_dir",
                "infer-raw-output-dir is not supported: Heron does not write raw output tensors",
            )
        )
    if gie.nvbuf_memory_type != 0:
        found.append(
            (
                "nvbuf_memory_type",
                f"nvbuf-memory-type {gie.nvbuf_memory_type} has no effect: Heron's frames are "
                "in shared memory or JPEG, not NvBufSurface",
            )
        )
    return found


def engine_not_run(findings: Iterable[Diagnostic]) -> Diagnostic | None:
    """The finding that a GIE's model is a TensorRT engine Heron cannot run, if any: the one on
    a group's model-engine-file (it wins over the nvinfer config's) before the config's."""
    hits = [d for d in findings if ENGINE_NOT_RUN in d.message]
    in_group = [d for d in hits if d.field.split(".")[-2:-1] != ["property"]]
    first = in_group or hits
    return first[0] if first else None
