"""Explicitly quantised (Q/DQ) ONNX from calibrated ranges: two variants of one calibration.

- `tensorrt`: int8 activations and weights, symmetric, per-channel weights, float bias — the
  form TensorRT (and TensorRT-RTX, which rejects int32 bias and non-zero zero points) builds.
- `cpu`: uint8 activations, int8 per-channel weights (U8S8): ~3× faster than FP32 in ONNX
  Runtime on an AVX2/VNNI CPU, where the symmetric form is no faster (../shared/NOTES.md).

Imports onnx/onnxruntime inside the functions.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from pathlib import Path
from typing import Any

QUANTIZATION_METADATA_KEY = "heron.quantization"


class QdqVariant(StrEnum):
    TENSORRT = "tensorrt"
    CPU = "cpu"


class _DropPreprocessingHint(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Please consider pre-processing")


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


def quantize(
    model: Path, ranges: Path, output: Path, *, variant: QdqVariant, method: Any, note: str
) -> Path:
    """Write `output` from `model` and the ranges ONNX Runtime saved (`save_tensors_data`).

    `method` is onnxruntime's CalibrationMethod the ranges came from; `note` goes into the
    model's metadata with the variant. The source model's metadata (the training settings) is
    kept, so the quantised model evaluates and serves like the FP32 one.
    """
    import onnx
    from onnxruntime.quantization import QuantFormat, quantize_static

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
            calibrate_method=method,
            calibration_cache_path=str(ranges),
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
    quantised.metadata_props.add(key=QUANTIZATION_METADATA_KEY, value=f"{variant.value}; {note}")
    onnx.save(quantised, str(output))
    return output
