"""Small networks with chosen filter norms, so the filters pruning must remove are known."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from heron.training import checkpoint as ckpt
from heron.training.model import DetectNetV2
from heron.training.settings import TrainingSettings
from torch import nn

from tests.training.conftest import tiny_settings


def set_norms(conv: nn.Conv2d, norms: list[float] | torch.Tensor) -> None:
    """Give output filter i of `conv` the L2 norm `norms[i]`."""
    target = torch.as_tensor(norms, dtype=torch.float32)
    with torch.no_grad():
        w = torch.randn_like(conv.weight)
        w /= w.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
        conv.weight.copy_(w * target.view(-1, 1, 1, 1))


def uniform_resnet(settings: TrainingSettings | None = None) -> DetectNetV2:
    """A ResNet DetectNet_v2 whose filters all have norm 1: nothing falls under a threshold."""
    s = settings or tiny_settings()
    model = DetectNetV2(s.model, len(s.classes))
    for m in model.backbone.modules():
        if isinstance(m, nn.Conv2d):
            set_norms(m, [1.0] * m.out_channels)
    return model


def save_model(model: DetectNetV2, settings: TrainingSettings, path: Path) -> Path:
    ckpt.save(path, ckpt.Checkpoint(settings=settings, model=model.state_dict(), epoch=3, step=9))
    return path


def bb(model: DetectNetV2) -> Any:
    """The backbone, untyped: tests reach into torchvision's Sequential/BasicBlock layers."""
    return model.backbone
