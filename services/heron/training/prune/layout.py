"""Rebuild a (pruned) DetectNet_v2 from its state dict: the tensor shapes are the layout.

A pruned checkpoint is an ordinary Heron checkpoint (`heron.training.checkpoint`, tensors and
plain data only, read with `torch.load(weights_only=True)`): no pickled module and no extra
layout record. Pruning only narrows convolutions and BatchNorms, so the unpruned network of
the stored settings plus the shape of every weight tells each layer's channel counts; a
depthwise convolution stays depthwise (groups = channels). Needs torch only, not
torch-pruning, so retraining and export run wherever training does.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from heron.training import checkpoint as ckpt
from heron.training import qat
from heron.training.model import DetectNetV2, LoadReport, freeze
from heron.training.settings import ModelSettings, TrainingSettings


class PrunedModelError(ValueError):
    """A checkpoint's tensors do not describe a narrowed DetectNet_v2 of its settings."""


def model_from_state(
    settings: TrainingSettings, state: dict[str, Tensor], source: str = "state dict"
) -> DetectNetV2:
    """The network of `settings`, its layers narrowed to `state`'s shapes, weights loaded."""
    model = DetectNetV2(settings.model, len(settings.classes))
    quantised = qat.is_qat_state(state)
    if quantised:  # a QAT network stores folded convolutions and no BatchNorms
        qat.fold_batch_norms(model.eval())
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.Conv2d):
            _replace(model, name, _narrow_conv(module, name, state, source))
        elif isinstance(module, nn.BatchNorm2d):
            _replace(model, name, _narrow_bn(module, name, state, source))
    if quantised:
        qat.quantize_convs(model)
    model.backbone.out_channels = model.cov.in_channels
    classes = len(settings.classes)
    if (model.cov.out_channels, model.bbox.out_channels) != (classes, 4 * classes):
        raise PrunedModelError(
            f"{source}: heads have {model.cov.out_channels} coverage and "
            f"{model.bbox.out_channels} bbox channels, the settings' {classes} classes "
            f"{list(settings.classes)} need {classes} and {4 * classes}"
        )
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise PrunedModelError(
            f"{source}: tensors do not fit a {settings.model.arch} DetectNet_v2 with "
            f"{len(settings.classes)} classes: {e}"
        ) from None
    return model


def _weight(state: dict[str, Tensor], key: str, source: str) -> Tensor:
    if key not in state:
        raise PrunedModelError(f"{source}: missing tensor {key!r}")
    return state[key]


def _narrow_conv(conv: nn.Conv2d, name: str, state: dict[str, Tensor], source: str) -> nn.Conv2d:
    weight = _weight(state, f"{name}.weight", source)
    if weight.dim() != 4 or tuple(weight.shape[2:]) != tuple(conv.weight.shape[2:]):
        raise PrunedModelError(
            f"{source}: {name}.weight has shape {tuple(weight.shape)}, expected "
            f"(out, in, {conv.kernel_size[0]}, {conv.kernel_size[1]})"
        )
    out_channels = int(weight.shape[0])
    depthwise = conv.groups > 1 and conv.groups == conv.in_channels == conv.out_channels
    groups = out_channels if depthwise else conv.groups
    in_channels = int(weight.shape[1]) * groups
    if (out_channels, in_channels) == (conv.out_channels, conv.in_channels):
        return conv
    return nn.Conv2d(
        in_channels,
        out_channels,
        conv.kernel_size,  # type: ignore[arg-type]
        stride=conv.stride,  # type: ignore[arg-type]
        padding=conv.padding,  # type: ignore[arg-type]
        dilation=conv.dilation,  # type: ignore[arg-type]
        groups=groups,
        bias=conv.bias is not None,
    )


def _narrow_bn(
    bn: nn.BatchNorm2d, name: str, state: dict[str, Tensor], source: str
) -> nn.BatchNorm2d:
    channels = int(_weight(state, f"{name}.running_mean", source).shape[0])
    if channels == bn.num_features:
        return bn
    return nn.BatchNorm2d(channels, eps=bn.eps, momentum=bn.momentum, affine=bn.affine)


def _replace(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, module)


def load_pruned(path: Path | str) -> tuple[DetectNetV2, TrainingSettings]:
    """A pruned (or unpruned) checkpoint as a ready network and its settings."""
    saved = ckpt.load(path, with_training_state=False)
    return model_from_state(saved.settings, saved.model, str(path)), saved.settings


def load_graph(
    settings: ModelSettings, num_classes: int, path: Path | str
) -> tuple[DetectNetV2, LoadReport]:
    """TAO's `load_graph: true`: architecture and weights from `path`, frozen per `settings`.

    What `build_model` should do when the spec sets `load_graph` (see docs/pruning.md). The
    pruned file must hold the same backbone and as many classes as the retrain spec.
    """
    model, saved = load_pruned(path)
    if saved.model.arch != settings.arch or (
        settings.arch == "resnet" and saved.model.num_layers != settings.num_layers
    ):
        raise PrunedModelError(
            f"{path}: [model_config] the pruned model is {saved.model.arch}"
            f"{saved.model.num_layers if saved.model.arch == 'resnet' else ''}, the spec asks "
            f"for {settings.arch}{settings.num_layers if settings.arch == 'resnet' else ''}"
        )
    if len(saved.classes) != num_classes:
        raise PrunedModelError(
            f"{path}: the pruned model has {len(saved.classes)} classes "
            f"{list(saved.classes)}, the spec trains {num_classes}"
        )
    # The retrain spec's input size and box encoding rule; the file brings layers and weights.
    model.settings = settings
    freeze(model, settings.freeze_blocks, settings.freeze_bn)
    loaded = len(model.state_dict())
    return model, LoadReport(f"{path} (load_graph)", loaded, [], [])


def channel_layout(model: nn.Module) -> dict[str, int]:
    """Output channels of every convolution, by module name (for reports and tests)."""
    return {n: m.out_channels for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def same_tensors(a: nn.Module, b: nn.Module) -> bool:
    """Whether two networks hold equal tensors under equal names (a round-trip check)."""
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
