"""DetectNet_v2 backbones cut at stride 16, built from torchvision's blocks.

Module names follow torchvision's (`conv1`, `bn1`, `layer1.0.conv1`, `features.3.conv.0`), so
a torchvision-format state dict loads by key. "Blocks", as `model_config.freeze_blocks` counts
them: 0 is the stem, then one block per stage (ResNet: layer1..layer3; MobileNetV2: the
stages of torchvision's inverted-residual table up to stride 16).

TAO's ResNet keeps a fourth stage at stride 1; we stop after layer3 (output stride 16 either
way). That stage doubles the compute at 960×544 and triples the weights, and the H100
throughput target (≥ 1,500 training images/s) has no room for it.

`pyramid(x)` also returns the last stride-8 features (ResNet layer2, MobileNetV2 features[:7])
for the stride-8 output variant (`model_config.output_stride: 8`).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn
from torchvision.models import mobilenet_v2
from torchvision.models.resnet import BasicBlock

RESNET_BLOCKS = {10: (1, 1, 1), 18: (2, 2, 2), 34: (3, 4, 6)}
MOBILENET_STAGES = ((0, 1), (1, 2), (2, 4), (4, 7), (7, 11), (11, 14))
"""features[a:b] of torchvision's MobileNetV2 per block; features[:14] ends at stride 16."""
STRIDE8_END = 7
"""features[:7] ends at stride 8 (32 channels)."""


class Backbone(nn.Module):
    """A feature extractor with `out_channels` and a list of freezable `blocks`."""

    out_channels: int
    out_channels8: int  # channels of the stride-8 features `pyramid` returns

    def blocks(self) -> list[nn.Module]:
        raise NotImplementedError

    def pyramid(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(stride-8 features, stride-16 features)."""
        raise NotImplementedError


class ResNetBackbone(Backbone):
    def __init__(self, num_layers: int, use_batch_norm: bool = True) -> None:
        super().__init__()
        if num_layers not in RESNET_BLOCKS:
            raise ValueError(
                f"[model_config.num_layers] expected one of {sorted(RESNET_BLOCKS)}, "
                f"got {num_layers}"
            )
        norm: Callable[[int], nn.Module] = nn.BatchNorm2d if use_batch_norm else _no_norm
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=not use_batch_norm)
        self.bn1 = norm(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        counts = RESNET_BLOCKS[num_layers]
        self.layer1 = _stage(64, 64, counts[0], 1, norm)
        self.layer2 = _stage(64, 128, counts[1], 2, norm)
        self.layer3 = _stage(128, 256, counts[2], 2, norm)
        self.out_channels = 256
        self.out_channels8 = 128
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def blocks(self) -> list[nn.Module]:
        return [nn.ModuleList([self.conv1, self.bn1]), self.layer1, self.layer2, self.layer3]

    def forward(self, x: Tensor) -> Tensor:
        return self.pyramid(x)[1]

    def pyramid(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c8: Tensor = self.layer2(self.layer1(x))
        return c8, self.layer3(c8)


def _no_norm(_channels: int) -> nn.Module:
    return nn.Identity()


def _stage(
    cin: int, cout: int, count: int, stride: int, norm: Callable[[int], nn.Module]
) -> nn.Sequential:
    downsample = None
    if stride != 1 or cin != cout:
        downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), norm(cout))
    layers = [BasicBlock(cin, cout, stride, downsample, norm_layer=norm)]
    layers += [BasicBlock(cout, cout, norm_layer=norm) for _ in range(count - 1)]
    return nn.Sequential(*layers)


class MobileNetV2Backbone(Backbone):
    def __init__(self) -> None:
        super().__init__()
        # weights=None: nothing is downloaded; ImageNet weights come from a local file.
        self.features = mobilenet_v2(weights=None).features[:14]
        self.out_channels = 96
        self.out_channels8 = 32

    def blocks(self) -> list[nn.Module]:
        return [self.features[a:b] for a, b in MOBILENET_STAGES]

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.features(x)
        return out

    def pyramid(self, x: Tensor) -> tuple[Tensor, Tensor]:
        c8: Tensor = self.features[:STRIDE8_END](x)
        return c8, self.features[STRIDE8_END:](c8)


def build_backbone(arch: str, num_layers: int, use_batch_norm: bool = True) -> Backbone:
    if arch == "resnet":
        return ResNetBackbone(num_layers, use_batch_norm)
    if arch == "mobilenet_v2":
        return MobileNetV2Backbone()
    raise ValueError(f"[model_config.arch] expected resnet or mobilenet_v2, got {arch!r}")
