"""A small DetectNet_v2-shaped network for plumbing tests, exported to ONNX with torch.

Input `input_1` (N, 3, H, W); outputs `output_cov/Sigmoid` (N, C, H/16, W/16) and
`output_bbox/BiasAdd` (N, 4C, H/16, W/16): the contract of heron.training's export, with four
stride-2 convolutions instead of a ResNet so the tests stay fast. Weights are seeded random.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

INPUT_NAME = "input_1"
COV_NAME = "output_cov/Sigmoid"
BBOX_NAME = "output_bbox/BiasAdd"


def build_detector(num_classes: int = 2, seed: int = 0) -> Any:
    """A torch module returning (coverage, bbox); eval mode, seeded weights."""
    import torch
    from torch import nn

    class TinyDetectNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layers: list[nn.Module] = []
            channels = 3
            for width in (8, 16, 16, 32):
                layers += [nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.ReLU()]
                channels = width
            self.features = nn.Sequential(*layers)
            self.cov = nn.Conv2d(channels, num_classes, 1)
            self.bbox = nn.Conv2d(channels, 4 * num_classes, 1)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            f = self.features(x)
            return torch.sigmoid(self.cov(f)), self.bbox(f)

    torch.manual_seed(seed)
    model = TinyDetectNet().eval()
    with torch.no_grad():
        # Larger head weights than the default init: coverage spread over (0, 1) and boxes of
        # tens of pixels, so random weights still give a few detections to check.
        model.cov.weight.mul_(30.0)
        model.bbox.weight.mul_(30.0)
    return model


def export_detector(model: Any, path: Path, height: int, width: int) -> Path:
    """ONNX with a dynamic batch axis and TAO's tensor names."""
    import torch

    torch.onnx.export(
        model,
        (torch.zeros(1, 3, height, width),),
        str(path),
        input_names=[INPUT_NAME],
        output_names=[COV_NAME, BBOX_NAME],
        dynamic_axes={INPUT_NAME: {0: "batch"}, COV_NAME: {0: "batch"}, BBOX_NAME: {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    return path
