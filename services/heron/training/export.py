"""Checkpoint → ONNX as DeepStream's DetectNet_v2 configs expect it, checked against PyTorch.

Input `input_1` (N, 3, H, W) float RGB in [0, 1], dynamic batch; outputs `output_cov/Sigmoid`
and `output_bbox/BiasAdd`; opset 17. The training settings go into the model's metadata
(`heron.settings`) so `heron infer`/`evaluate` can run the ONNX file on its own.

A QAT checkpoint (`training_config.enable_qat`) exports as the explicitly quantised model
TensorRT builds INT8 from (Q/DQ, symmetric int8), and beside it `<name>.u8s8.onnx`, the same
grid with uint8 activations for ONNX Runtime on a CPU (`heron.training.qat.cpu_form`).

A `.pt2` output is a `torch.export` program instead (same input and outputs, dynamic batch),
which the inference service's PyTorch CUDA backend runs on GPUs without TensorRT.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.jit import TracerWarning  # type: ignore[attr-defined]

from heron.core.model_metadata import SETTINGS_METADATA_KEY
from heron.training import qat
from heron.training.model import BBOX_NAME, COV_NAME, INPUT_NAME, DetectNetV2
from heron.training.predict import OnnxRunner, load_batch, settings_json

OPSET = 17
MAX_EXPORT_BATCH = 64


@dataclass(frozen=True)
class ExportReport:
    onnx: Path
    images: int  # how many images the parity check ran on
    real_images: bool  # False: random inputs (no images given)
    max_abs_diff_cov: float
    max_abs_diff_bbox: float
    cpu_form: Path | None = None  # a QAT model's uint8-activation form for ONNX Runtime

    @property
    def max_abs_diff(self) -> float:
        return max(self.max_abs_diff_cov, self.max_abs_diff_bbox)


def export_onnx(
    checkpoint: Path, output: Path, check_images: Sequence[Path] = (), batch: int = 2
) -> ExportReport:
    """Write `output` and compare ONNX Runtime with PyTorch on `check_images` (or random)."""
    import onnx

    from heron.training.prune.layout import load_pruned

    model, settings = load_pruned(checkpoint)  # pruned or not: tensor shapes give the layout
    model.eval()
    h, w = settings.model.input_height, settings.model.input_width
    dummy = torch.rand(batch, 3, h, w)
    output.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # The tracer notes that forward()'s `logits` flag is fixed: it is (False) for export.
        warnings.simplefilter("ignore", TracerWarning)
        torch.onnx.export(
            model,
            (dummy,),
            str(output),
            input_names=[INPUT_NAME],
            output_names=[COV_NAME, BBOX_NAME],
            dynamic_axes={
                INPUT_NAME: {0: "batch"},
                COV_NAME: {0: "batch"},
                BBOX_NAME: {0: "batch"},
            },
            opset_version=OPSET,
            dynamo=False,  # the TorchScript exporter keeps our names and needs no onnxscript
        )
    proto = onnx.load(str(output))
    entry = proto.metadata_props.add()
    entry.key, entry.value = SETTINGS_METADATA_KEY, settings_json(settings)
    proto.producer_name = "heron"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(output))
    if check_images:
        images, _ = load_batch(list(check_images), settings)
    else:
        images = np.random.default_rng(0).random((batch, 3, h, w), dtype=np.float32)
    cov_diff, bbox_diff = parity(model, OnnxRunner(output), images)
    cpu = None
    if any(isinstance(m, qat.QuantConv2d) for m in model.modules()):
        cpu = qat.cpu_form(output, output.with_name(f"{output.stem}{qat.CPU_FORM_SUFFIX}"))
    return ExportReport(output, len(images), bool(check_images), cov_diff, bbox_diff, cpu)


@torch.no_grad()
def parity(model: DetectNetV2, runner: OnnxRunner, images: np.ndarray) -> tuple[float, float]:
    """Max absolute difference of each output, ONNX Runtime vs PyTorch (CPU, fp32)."""
    cov_t, bbox_t = model(torch.from_numpy(images))
    cov_o, bbox_o = runner(images)
    return (
        float(np.abs(cov_t.numpy() - cov_o).max()),
        float(np.abs(bbox_t.numpy() - bbox_o).max()),
    )


def export_program(checkpoint: Path, output: Path, batch: int = 2) -> ExportReport:
    """Write a `torch.export` program (.pt2) with a dynamic batch, checked against eager."""
    from heron.training.prune.layout import load_pruned

    model, settings = load_pruned(checkpoint)
    model.eval()
    h, w = settings.model.input_height, settings.model.input_width
    images = torch.from_numpy(np.random.default_rng(0).random((batch, 3, h, w), dtype=np.float32))
    batch_dim = torch.export.Dim("batch", min=1, max=MAX_EXPORT_BATCH)
    program = torch.export.export(model, (images,), dynamic_shapes=({0: batch_dim},))
    output.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(program, str(output))
    loaded = torch.export.load(str(output)).module()
    with torch.no_grad():
        cov_e, bbox_e = model(images)
        cov_p, bbox_p = loaded(images)
    return ExportReport(
        output,
        batch,
        False,
        float((cov_e - cov_p).abs().max()),
        float((bbox_e - bbox_p).abs().max()),
    )
