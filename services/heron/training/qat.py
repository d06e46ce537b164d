"""Quantisation-aware training (TAO's `training_config.enable_qat`), TensorRT's explicit Q/DQ.

What TensorRT builds from an explicitly quantised ONNX is what the network trains through:
symmetric int8, weights per output channel (scale = max|w| / 127, recomputed every step, as the
exporter and TensorRT compute it), activations per tensor at every convolution's input (scale =
amax / 127, amax calibrated once on training images before fine-tuning and then fixed, as in
NVIDIA's pytorch-quantization and Model Optimizer recipes). BatchNorms are folded into their
convolutions first: TensorRT folds them before quantising the weights, so training against
unfolded weights would learn rounding that the engine never applies.

Torch's own fake-quantisation ops do the rounding (straight-through gradients inside the range,
none outside) and export as ONNX QuantizeLinear/DequantizeLinear pairs, so `heron export` of a
QAT checkpoint writes the Q/DQ model `heron build-engine` takes; `cpu_form` rewrites it into
the uint8-activation form ONNX Runtime runs fast on a CPU, with the same grid.

The quantisers' `amax` buffers travel in the checkpoint's state dict (`*.input_quantizer.amax`),
which is how a loader tells a QAT checkpoint from a float one (`is_qat_state`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from itertools import pairwise
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

log = logging.getLogger(__name__)

AMAX_KEY = "input_quantizer.amax"
# The int8 range ONNX QuantizeLinear saturates to. Scales are amax / 127 (symmetric, TensorRT's
# convention), so -128 is never reached by a weight and sits one step past -amax for activations:
# training and the exported graph round identically.
QMIN, QMAX, QSCALE = -128, 127, 127.0
# Activation ranges: the mean over calibration batches of each batch's 99.99th percentile of |x|
# (a cheap stand-in for pytorch-quantization's histogram percentile: no histogram to keep per
# tensor on the training device). Percentile 99.99 was the best post-training recipe on the
# face-mask gate images and 0.06 point from the best on select (docs/benchmarks/int8.md).
PERCENTILE = 99.99
CALIBRATION_BATCHES = 16
CPU_FORM_SUFFIX = ".u8s8.onnx"  # beside the exported Q/DQ model: model.onnx → model.u8s8.onnx
_SAMPLE = 1 << 22  # elements per batch a percentile is taken over (a strided subsample)


class QatError(ValueError):
    """A network cannot be prepared for QAT (a BatchNorm without its convolution, ...)."""


class FakeQuantizer(nn.Module):
    """Per-tensor symmetric int8 fake quantisation of activations, `amax` fixed once calibrated."""

    amax: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("amax", torch.zeros(()))
        self._observed: list[Tensor] | None = None

    def start_calibration(self) -> None:
        self._observed = []

    def finish_calibration(self, name: str) -> None:
        if not self._observed:
            raise QatError(f"{name}: no calibration batch reached this convolution")
        self.amax.fill_(torch.stack(self._observed).mean().clamp_min(1e-8))
        self._observed = None

    def forward(self, x: Tensor) -> Tensor:
        if self._observed is not None:
            self._observed.append(_percentile_abs(x.detach()))
            return x
        scale = (self.amax.detach() / QSCALE).to(torch.float32).reshape(1)
        if torch.onnx.is_in_onnx_export():  # a constant, not ops on the buffer, in the graph
            scale = torch.tensor([float(scale)])
        return _fake_quantize(x, scale, None)


def _fake_quantize(x: Tensor, scale: Tensor, axis: int | None) -> Tensor:
    zero = torch.zeros(scale.shape, dtype=torch.int32, device=x.device)
    source = x if x.dtype == torch.float32 else x.float()
    if axis is None:
        out = torch.fake_quantize_per_tensor_affine(source, scale, zero, QMIN, QMAX)
    else:
        out = torch.fake_quantize_per_channel_affine(source, scale, zero, axis, QMIN, QMAX)
    return out if out.dtype == x.dtype else out.to(x.dtype)


def _percentile_abs(x: Tensor) -> Tensor:
    flat = x.abs().flatten()
    step = max(1, flat.numel() // _SAMPLE)
    sample = flat[::step].float()
    k = max(1, round(sample.numel() * PERCENTILE / 100.0))
    return sample.kthvalue(k).values


def weight_scales(weight: Tensor) -> Tensor:
    """Per output channel: max|w| / 127 (what TensorRT derives from the weights itself)."""
    return weight.detach().abs().flatten(1).amax(dim=1).clamp_min(1e-8) / QSCALE


class QuantConv2d(nn.Conv2d):
    """A convolution whose input and weight pass through int8 fake quantisation."""

    input_quantizer: FakeQuantizer

    def forward(self, x: Tensor) -> Tensor:
        scales = weight_scales(self.weight)
        if torch.onnx.is_in_onnx_export():  # constants: no Abs/ReduceMax at run time
            scales = torch.tensor(scales.tolist())
        weight = _fake_quantize(self.weight, scales, 0)
        out: Tensor = self._conv_forward(self.input_quantizer(x), weight, self.bias)
        return out


def is_qat_state(state: dict[str, Tensor]) -> bool:
    """The state dict is a QAT network's: BatchNorms folded, quantiser ranges present."""
    return any(key.endswith(AMAX_KEY) for key in state)


def fold_batch_norms(model: nn.Module) -> int:
    """Fold every BatchNorm into the convolution registered just before it; the number folded.

    Heron's backbones (torchvision's MobileNetV2 blocks, ResNet's `conv1, bn1, ...`, the
    stride-8 neck) register each BatchNorm right after the convolution that feeds it; one that
    is not is refused rather than guessed. Works on a network in eval mode only (running
    statistics become weights).
    """
    folded = 0
    for parent_name, parent in list(model.named_modules()):
        children = list(parent.named_children())
        for (conv_name, conv), (bn_name, bn) in pairwise(children):
            if not isinstance(bn, nn.BatchNorm2d):
                continue
            if not isinstance(conv, nn.Conv2d) or conv.out_channels != bn.num_features:
                where = f"{parent_name}.{bn_name}" if parent_name else bn_name
                raise QatError(f"{where}: a BatchNorm that does not follow its convolution")
            setattr(parent, conv_name, fuse_conv_bn_eval(conv.eval(), bn.eval()))
            setattr(parent, bn_name, nn.Identity())
            folded += 1
    return folded


def quantize_convs(model: nn.Module) -> list[str]:
    """Turn every `nn.Conv2d` into a `QuantConv2d` in place (weights kept); their names."""
    names = []
    for name, module in list(model.named_modules()):
        if type(module) is nn.Conv2d:
            module.__class__ = QuantConv2d
            module.add_module("input_quantizer", FakeQuantizer().to(module.weight.device))
            names.append(name)
    return names


def prepare_structure(model: nn.Module) -> list[str]:
    """A float network turned into its QAT form with uncalibrated quantisers (eval mode after)."""
    model.eval()
    fold_batch_norms(model)
    return quantize_convs(model)


@torch.no_grad()
def calibrate(model: nn.Module, batches: Iterable[Tensor]) -> int:
    """Set every quantiser's `amax` from `batches` (images the network takes); batches used."""
    quantizers = {n: m for n, m in model.named_modules() if isinstance(m, FakeQuantizer)}
    if not quantizers:
        raise QatError("the network has no quantisers: prepare it for QAT first")
    was_training = model.training
    model.eval()
    for quantizer in quantizers.values():
        quantizer.start_calibration()
    used = 0
    for images in batches:
        model(images)
        used += 1
    for name, quantizer in quantizers.items():
        quantizer.finish_calibration(name)
    model.train(was_training)
    log.info(
        "QAT: %d activation ranges from %d batches (percentile %s)",
        len(quantizers),
        used,
        PERCENTILE,
    )
    return used


def cpu_form(qdq_model: Path, output: Path) -> Path:
    """The uint8-activation (U8S8) form of an exported QAT model, for ONNX Runtime on a CPU.

    ONNX Runtime's fast int8 CPU kernels take uint8 activations. An int8 activation with zero
    point 0 and a uint8 one with zero point 128 sit on the same grid (q + 128), so moving every
    activation's Q/DQ pair to uint8 changes no value the network computes; weights stay int8.
    """
    import numpy as np
    import onnx
    from onnx import numpy_helper

    from heron.core.int8.qdq import activation_zero_points

    model = onnx.load(str(qdq_model))
    # A Q and its DQ share one zero point: each is changed once, in place.
    for name, tensor in activation_zero_points(model.graph).items():
        zero = numpy_helper.to_array(tensor)
        if zero.dtype != np.int8 or np.any(zero != 0):
            raise QatError(f"{qdq_model}: activation zero point {name} is {zero}, not int8 0")
        shifted = np.full(zero.shape, 128, dtype=np.uint8)
        tensor.CopyFrom(numpy_helper.from_array(shifted, tensor.name or name))
    onnx.checker.check_model(model)
    onnx.save(model, str(output))
    return output
