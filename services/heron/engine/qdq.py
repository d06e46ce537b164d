"""Explicitly quantised (Q/DQ) ONNX from calibrated ranges: two variants of one calibration.

- `tensorrt`: int8 activations and weights, symmetric, per-channel weights, float bias — the
  form TensorRT (and TensorRT-RTX, which rejects int32 bias and non-zero zero points) builds.
- `cpu`: uint8 activations, int8 per-channel weights (U8S8): ~3× faster than FP32 in ONNX
  Runtime on an AVX2/VNNI CPU, where the symmetric form is no faster (../shared/NOTES.md).

Imports onnx/onnxruntime inside the functions.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

QUANTIZATION_METADATA_KEY = "heron.quantization"


class QdqVariant(StrEnum):
    TENSORRT = "tensorrt"
    CPU = "cpu"


class _DropPreprocessingHint(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing" not in record.getMessage()


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
    """Write `output` from `model` and symmetric ranges saved by `save_ranges`.

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
