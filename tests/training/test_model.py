"""DetectNet_v2 network: shapes per backbone, pretrained loading, freezing."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from heron.training.backbones import ResNetBackbone
from heron.training.model import (
    DetectNetV2,
    PretrainedWeightsError,
    freeze,
    load_pretrained,
    mobilenet_imagenet_weights,
)
from heron.training.network import build_model
from heron.training.settings import Arch, ModelSettings, SettingsError
from torchvision.models.resnet import BasicBlock


@pytest.mark.parametrize(
    ("arch", "layers"), [("resnet", 10), ("resnet", 18), ("resnet", 34), ("mobilenet_v2", 18)]
)
def test_outputs_are_stride_16_grids(arch: Arch, layers: int) -> None:
    model = DetectNetV2(
        ModelSettings(arch=arch, num_layers=layers, input_width=128, input_height=64), 3
    )
    cov, bbox = model(torch.rand(2, 3, 64, 128))
    assert cov.shape == (2, 3, 4, 8) and bbox.shape == (2, 12, 4, 8)
    assert cov.min() >= 0 and cov.max() <= 1
    logits, _ = model(torch.rand(1, 3, 64, 128), logits=True)
    assert logits.min() < 0  # raw logits, not probabilities


@pytest.mark.parametrize(("arch", "layers"), [("resnet", 18), ("mobilenet_v2", 18)])
def test_output_stride_8_gives_grids_twice_as_fine(arch: Arch, layers: int) -> None:
    settings = ModelSettings(
        arch=arch, num_layers=layers, input_width=128, input_height=64, output_stride=8
    )
    model = DetectNetV2(settings, 3)
    assert settings.grid == (8, 16)
    cov, bbox = model(torch.rand(2, 3, 64, 128))
    assert cov.shape == (2, 3, 8, 16) and bbox.shape == (2, 12, 8, 16)
    # The neck sees the backbone's stride-16 features too: they change the output.
    c8, c16 = model.backbone.pyramid(torch.rand(1, 3, 64, 128))
    assert c8.shape[-2:] == (8, 16) and c16.shape[-2:] == (4, 8)


def test_stride_8_keeps_the_imagenet_backbone_keys() -> None:
    model = DetectNetV2(ModelSettings(arch="mobilenet_v2", output_stride=8), 2)
    report = load_pretrained(model, mobilenet_imagenet_weights())
    assert report.missing == []


def test_mobilenet_imagenet_weights_load_without_missing_backbone_keys() -> None:
    model, report = build_model(ModelSettings(arch="mobilenet_v2"), 2)
    assert report is not None and report.missing == []
    assert report.loaded == len(model.backbone.state_dict())
    assert any(k.startswith("classifier") for k in report.unexpected)  # the ImageNet head
    weights = torch.load(mobilenet_imagenet_weights(), weights_only=True)
    assert torch.equal(
        model.backbone.state_dict()["features.0.0.weight"], weights["features.0.0.weight"]
    )


def test_torchvision_resnet_state_dict_loads_by_key(tmp_path: Path) -> None:
    from torchvision.models import resnet18

    path = tmp_path / "resnet18.pth"
    torch.save(resnet18(weights=None).state_dict(), path)
    _, report = build_model(ModelSettings(num_layers=18, pretrained_model_file=str(path)), 2)
    assert report is not None and report.missing == []
    assert any(k.startswith("layer4") for k in report.unexpected)
    assert any(k.startswith("fc") for k in report.unexpected)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        (b"not a checkpoint at all", "not a PyTorch state dict"),
        ({"conv1.weight": torch.zeros(64, 3, 3, 3)}, "has shape (64, 3, 3, 3)"),
        ({"something.else": torch.zeros(1)}, "no key matches"),
        ([1, 2, 3], "expected a dict of tensors"),
    ],
)
def test_bad_pretrained_files_give_clear_errors(
    tmp_path: Path, content: object, message: str
) -> None:
    path = tmp_path / "weights.pth"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    model = DetectNetV2(ModelSettings(num_layers=18), 2)
    with pytest.raises(
        PretrainedWeightsError, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        load_pretrained(model, path)


def test_freeze_blocks_and_bn() -> None:
    model = DetectNetV2(ModelSettings(num_layers=18), 2)
    freeze(model, (0, 1), freeze_bn=True)
    resnet = model.backbone
    assert isinstance(resnet, ResNetBackbone)
    assert not resnet.conv1.weight.requires_grad
    assert not any(p.requires_grad for p in resnet.layer1.parameters())
    block = resnet.layer2[0]
    assert isinstance(block, BasicBlock)
    assert block.conv1.weight.requires_grad
    assert not block.bn1.weight.requires_grad
    with pytest.raises(ValueError, match=r"freeze_blocks\] block 7 does not exist"):
        freeze(model, (7,), freeze_bn=False)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"arch": "vgg"}, "model_config.arch"),
        ({"num_layers": 50}, "model_config.num_layers"),
        ({"input_width": 100}, "output_image_width"),
        ({"input_height": 0}, "output_image_height"),
        ({"bbox_scale": 0.0}, "objective_set.bbox.scale"),
        ({"output_stride": 4}, "model_config.output_stride"),
    ],
)
def test_bad_model_settings_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(SettingsError, match=field):
        ModelSettings(**kwargs)  # type: ignore[arg-type]
