"""Explicitly quantised (Q/DQ) ONNX from calibrated ranges: two variants of one calibration.

- `tensorrt`: int8 activations and weights, symmetric, per-channel weights, float bias — the
  form TensorRT (and TensorRT-RTX, which rejects int32 bias and non-zero zero points) builds.
- `cpu`: uint8 activations, int8 per-channel weights (U8S8): ~3× faster than FP32 in ONNX
  Runtime on an AVX2/VNNI CPU, where the symmetric form is no faster (../shared/NOTES.md).

In the core because two services write them: the engine after calibrating (`heron calibrate`),
the inference service from a calibration cache (`network-mode=1` on CPU). Imports
onnx/onnxruntime inside the functions.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import onnx

QUANTIZATION_METADATA_KEY = "heron.quantization"
QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})


def has_qdq(model: onnx.ModelProto) -> bool:
    """The graph is explicitly quantised: INT8 travels as Q/DQ nodes (TensorRT's explicit mode,
    ONNX Runtime's QDQ format)."""
    return any(n.op_type in QDQ_OPS for n in model.graph.node)


def activation_tensors(model: onnx.ModelProto) -> list[str]:
    """Float tensors computed at run time (graph inputs and node outputs): what INT8 calibrates."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in graph.value_info}
    types.update({v.name: v.type.tensor_type.elem_type for v in graph.input})
    types.update({v.name: v.type.tensor_type.elem_type for v in graph.output})
    initializers = {i.name for i in graph.initializer}
    names = [i.name for i in graph.input if i.name not in initializers]
    names += [o for n in graph.node if n.op_type != "Constant" for o in n.output if o]
    return [n for n in names if types.get(n) == onnx.TensorProto.FLOAT]


def scoring_options(model: Path) -> Any:
    """ONNX Runtime session options that score `model` as the INT8 arithmetic it describes.

    A model with int8 activations is TensorRT's form. ONNX Runtime's int8 CPU kernels compute
    it exactly only with VNNI: on plain AVX2, u8 x s8 products are summed in pairs into int16
    and saturate (a test model's outputs moved 8 % of their range instead of 2.5 %). So such a
    model runs its Q/DQ pairs as float arithmetic, which is what TensorRT computes. The CPU
    form (uint8 activations) keeps ONNX Runtime's int8 kernels: those are what it runs on.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    if int8_activations(model):
        options.add_session_config_entry("session.disable_quant_qdq", "1")
    return options


def int8_activations(model: Path) -> bool:
    """Some activation is quantised to int8 (the symmetric TensorRT form)."""
    import onnx

    try:
        proto = onnx.load(str(model), load_external_data=False)
    except Exception:  # not ONNX: the session that follows says so, naming the file
        return False
    zeros = activation_zero_points(proto.graph).values()
    return any(z.data_type == onnx.TensorProto.INT8 for z in zeros)


def activation_zero_points(graph: onnx.GraphProto) -> dict[str, onnx.TensorProto]:
    """The zero points of the Q/DQ pairs on activations (not on weights), by name, as the
    graph's own tensors (an initializer or a Constant's value): changing one changes the graph.
    A weight is an initializer, or what QuantizeLinear makes of one."""
    initializers = {i.name: i for i in graph.initializer}
    constants = {n.output[0]: n.attribute[0].t for n in graph.node if n.op_type == "Constant"}
    weights = set(initializers)
    for node in graph.node:
        if node.op_type == "QuantizeLinear" and node.input[0] in weights:
            weights.update(node.output)
    names = {
        node.input[2]
        for node in graph.node
        if node.op_type in QDQ_OPS and len(node.input) > 2 and node.input[0] not in weights
    }
    return {n: initializers[n] if n in initializers else constants[n] for n in sorted(names)}


class QdqVariant(StrEnum):
    TENSORRT = "tensorrt"
    CPU = "cpu"


class _DropPreprocessingHint(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return "pre-processing" not in message and not message.startswith("Please consider")


def _arguments(variant: QdqVariant) -> dict[str, Any]:
    from onnxruntime.quantization import QuantType

    if variant is QdqVariant.TENSORRT:
        return {
            "activation_type": QuantType.QInt8,
            "weight_type": QuantType.QInt8,
            "extra_options": {
                "QuantizeBias": False,
                "ActivationSymmetric": True,
                "WeightSymmetric": True,
            },
        }
    return {
        "activation_type": QuantType.QUInt8,
        "weight_type": QuantType.QInt8,
        "extra_options": {"WeightSymmetric": True},
    }


def save_ranges(ranges: Mapping[str, tuple[float, float]], path: Path) -> Path:
    """ONNX Runtime's calibration cache (JSON) of (low, high) per tensor."""
    import numpy as np
    from onnxruntime.quantization.calibrate import (
        CalibrationMethod,
        TensorsData,
        save_tensors_data,
    )

    data = {n: (np.float32(low), np.float32(high)) for n, (low, high) in ranges.items()}
    save_tensors_data(TensorsData(CalibrationMethod.MinMax, data), path)
    return path


def quantize(
    model: Path,
    ranges: Path,
    output: Path,
    *,
    variant: QdqVariant,
    note: str,
    keep_float: Sequence[str] = (),
) -> Path:
    """Write `output` from `model` and the (low, high) ranges saved by `save_ranges`.

    `keep_float` names nodes left unquantised (no Q/DQ on their inputs: TensorRT runs them in
    FP16/FP32). `note` goes into the model's metadata with the variant. The source model's
    metadata (the training settings) is kept, so the quantised model evaluates and serves like
    the FP32 one.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, quantize_static

    # quantize_static logs a hint about pre-processing on every call; Heron's exports are
    # already shape-inferred and constant-folded by torch.onnx.
    hint = _DropPreprocessingHint()
    logging.getLogger().addFilter(hint)
    try:
        quantize_static(
            str(model),
            str(output),
            None,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            calibrate_method=CalibrationMethod.MinMax,  # save_ranges' (lowest, highest) form
            calibration_cache_path=str(ranges),
            nodes_to_exclude=list(keep_float),
            **_arguments(variant),
        )
    finally:
        logging.getLogger().removeFilter(hint)
    source = onnx.load(str(model), load_external_data=False)
    quantised = onnx.load(str(output))
    _drop_unused_constants(quantised.graph)
    present = {p.key for p in quantised.metadata_props}
    for prop in source.metadata_props:
        if prop.key not in present:
            quantised.metadata_props.add(key=prop.key, value=prop.value)
    kept = f"; float: {', '.join(keep_float)}" if keep_float else ""
    quantised.metadata_props.add(
        key=QUANTIZATION_METADATA_KEY, value=f"{variant.value}; {note}{kept}"
    )
    onnx.save(quantised, str(output))
    return output


def _drop_unused_constants(graph: Any) -> None:
    """The Clip bounds left behind when the quantiser folds ReLU6 into the Conv before it
    (else ONNX Runtime logs a warning per bound at every session start)."""
    used = {name for node in graph.node for name in node.input}
    used.update(o.name for o in graph.output)
    unused = [n for n in graph.node if n.op_type == "Constant" and n.output[0] not in used]
    for node in unused:
        graph.node.remove(node)
