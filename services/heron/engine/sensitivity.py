"""Which layers to leave in float: per-layer INT8 sensitivity of the TensorRT Q/DQ model.

For every compute layer (Conv, ConvTranspose, Gemm, MatMul) the symmetric Q/DQ model is made
again with that one layer left unquantised, and run in ONNX Runtime on a few calibration
images; a layer's sensitivity is the share of the all-INT8 model's output error that goes away.
TensorRT runs a layer without Q/DQ in FP16/FP32, so keeping the few most sensitive ones float
is its usual accuracy fix (for detectors: the first convolution and the output heads).

Model-agnostic: any number of outputs, any grid; the error is relative, per output.
Imports onnxruntime inside the functions.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

COMPUTE_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


@dataclass(frozen=True)
class LayerSensitivity:
    node: str
    op_type: str
    error: float  # output error of the Q/DQ model with this one layer in float
    recovered: float  # share of the all-INT8 error this removes: 1 − error / baseline


@dataclass(frozen=True)
class SensitivityReport:
    baseline: float  # output error of the all-INT8 Q/DQ model
    layers: tuple[LayerSensitivity, ...]  # most sensitive first

    def choose(self, max_layers: int, min_recovered: float) -> tuple[str, ...]:
        """The most sensitive layers, at most `max_layers`, each removing ≥ `min_recovered`."""
        picked = [s.node for s in self.layers if s.recovered >= min_recovered]
        return tuple(picked[:max_layers])

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline_error": self.baseline,
            "layers": [
                {"node": s.node, "op": s.op_type, "error": s.error, "recovered": s.recovered}
                for s in self.layers
            ],
        }


def compute_layers(model: Path) -> list[tuple[str, str]]:
    """(node name, op type) of the layers that carry weights, in graph order."""
    import onnx

    proto = onnx.load(str(model), load_external_data=False)
    unnamed = [n.op_type for n in proto.graph.node if n.op_type in COMPUTE_OPS and not n.name]
    if unnamed:
        # quantize_static excludes nodes by name: an unnamed one could never be kept float.
        raise ValueError(f"{model}: {len(unnamed)} {unnamed[0]} node(s) have no name")
    return [(n.name, n.op_type) for n in proto.graph.node if n.op_type in COMPUTE_OPS]


def _relative(reference: np.ndarray, output: np.ndarray, weight: np.ndarray | float) -> float:
    norm = float(np.linalg.norm(weight * reference))
    return float(np.linalg.norm(weight * (output - reference))) / (norm if norm > 0 else 1.0)


def output_error(reference: Sequence[np.ndarray], outputs: Sequence[np.ndarray]) -> float:
    """Σ over outputs of ‖int8 − fp32‖ / ‖fp32‖: each output weighs the same, whatever its scale.

    DetectNet_v2's pair — coverage (N, C, H, W) then boxes (N, 4C, H, W), any grid — counts box
    errors weighted by the FP32 coverage of their class: boxes of cells without an object are
    never read, and their noise would hide the layers that move real detections.
    """
    if len(reference) == 2 and _is_detectnet(reference[0], reference[1]):
        cov, bbox = reference
        weight = np.repeat(cov, 4, axis=1)
        return _relative(cov, outputs[0], 1.0) + _relative(bbox, outputs[1], weight)
    return sum(_relative(r, o, 1.0) for r, o in zip(reference, outputs, strict=True))


def _is_detectnet(cov: np.ndarray, bbox: np.ndarray) -> bool:
    return (
        cov.ndim == bbox.ndim == 4
        and bbox.shape[1] == 4 * cov.shape[1]
        and cov.shape[2:] == bbox.shape[2:]
        and float(cov.min()) >= 0.0
    )


def run_model(model: Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # no warnings about unused initializers of Q/DQ graphs
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    return [np.asarray(o) for o in session.run(None, feeds)]


def analyse(
    model: Path,
    feeds: dict[str, np.ndarray],
    quantise: Callable[[Path, Sequence[str]], Path],
    on_layer: Callable[[int, int], None] | None = None,
) -> SensitivityReport:
    """Rank the compute layers of `model` by how much INT8 error keeping each float removes.

    `quantise(output, keep_float)` writes the TensorRT Q/DQ model (the caller's calibration)
    and returns its path; `feeds` is a few calibration images, as one input batch.
    """
    reference = run_model(model, feeds)
    layers = compute_layers(model)
    with tempfile.TemporaryDirectory(prefix="heron-sensitivity-") as tmp:
        baseline = output_error(reference, run_model(quantise(Path(tmp) / "all.onnx", ()), feeds))
        found = []
        for index, (name, op_type) in enumerate(layers):
            path = quantise(Path(tmp) / f"layer{index}.onnx", (name,))
            error = output_error(reference, run_model(path, feeds))
            path.unlink()
            recovered = 1.0 - error / baseline if baseline > 0 else 0.0
            found.append(LayerSensitivity(name, op_type, error, recovered))
            if on_layer is not None:
                on_layer(index + 1, len(layers))
    found.sort(key=lambda s: s.error)
    return SensitivityReport(baseline, tuple(found))
