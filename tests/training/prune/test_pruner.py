"""Pruning DetectNet_v2: fewer parameters, same outputs' shapes, TAO's counting rules."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from heron.training import checkpoint as ckpt
from heron.training.model import BBOX_NAME, COV_NAME, INPUT_NAME, DetectNetV2
from heron.training.prune.importance import Equalization
from heron.training.prune.layout import (
    PrunedModelError,
    channel_layout,
    load_pruned,
    model_from_state,
    same_tensors,
)
from heron.training.prune.pruner import PruneError, PruneOptions, prune_checkpoint, prune_model
from torch import nn
from torchvision.models.resnet import BasicBlock

from tests.training.conftest import INPUT, tiny_settings
from tests.training.prune.helpers import bb, save_model, set_norms, uniform_resnet

EXAMPLE = torch.rand(1, 3, INPUT[1], INPUT[0])
LOW = 0.01  # a filter norm far under any threshold used here


def _low_tail(total: int, high: int) -> list[float]:
    return [1.0] * high + [LOW] * (total - high)


def _residuals_consistent(model: DetectNetV2) -> None:
    for name, block in model.named_modules():
        if isinstance(block, BasicBlock):
            skip = block.downsample[0].out_channels if block.downsample else block.conv1.in_channels
            assert block.conv2.out_channels == skip == block.bn2.num_features, name


@pytest.mark.parametrize(("arch", "layers"), [("resnet", 10), ("resnet", 18), ("mobilenet_v2", 0)])
def test_pruning_cuts_parameters_and_keeps_outputs(arch: str, layers: int, tmp_path: Path) -> None:
    settings = tiny_settings(arch, layers or 18)
    model = DetectNetV2(settings.model, 2)
    for m in model.backbone.modules():  # half the filters of every layer are weak
        if isinstance(m, nn.Conv2d):
            set_norms(m, torch.rand(m.out_channels) * 0.1 + (torch.arange(m.out_channels) % 2))
    source = save_model(model, settings, tmp_path / "model.pt")
    report = prune_checkpoint(source, tmp_path / "pruned.pt", PruneOptions(threshold=0.3))
    assert report.after.parameters < 0.6 * report.before.parameters
    assert report.after.macs < report.before.macs
    pruned, _ = load_pruned(tmp_path / "pruned.pt")
    cov, bbox = pruned(EXAMPLE)
    assert cov.shape == (1, 2, INPUT[1] // 16, INPUT[0] // 16)
    assert bbox.shape == (1, 8, INPUT[1] // 16, INPUT[0] // 16)
    assert pruned.cov.out_channels == 2 and pruned.bbox.out_channels == 8
    _residuals_consistent(pruned)
    if arch == "mobilenet_v2":  # a depthwise conv stays depthwise, as wide as its expansion
        dw = bb(pruned).features[3].conv[1][0]
        assert dw.groups == dw.in_channels == dw.out_channels == 72


def test_granularity_and_min_filters_on_a_plain_layer() -> None:
    for granularity, min_filters, kept in [
        (8, 16, 104),
        (1, 16, 100),
        (32, 16, 128),
        (8, 112, 112),
    ]:
        model = uniform_resnet()
        set_norms(bb(model).layer2[0].conv1, _low_tail(128, 100))
        prune_model(
            model, PruneOptions(0.1, granularity=granularity, min_filters=min_filters), EXAMPLE
        )
        layout = channel_layout(model)
        assert layout["backbone.layer2.0.conv1"] == kept
        assert bb(model).layer2[0].conv2.in_channels == kept
        assert sum(layout.values()) == sum(channel_layout(uniform_resnet()).values()) - (128 - kept)


@pytest.mark.parametrize(
    ("criterion", "pth", "kept"),
    [
        ("union", 0.1, 48),
        ("intersection", 0.1, 16),
        ("arithmetic_mean", 0.6, 16),
        ("arithmetic_mean", 0.4, 48),
        ("geometric_mean", 0.2, 16),
        ("geometric_mean", 0.05, 48),
    ],
)
def test_residual_joined_layers_prune_together(
    criterion: Equalization, pth: float, kept: int
) -> None:
    model = uniform_resnet()
    # The stem and layer1's second conv feed one add: channels 0-15 are strong in both,
    # 16-31 only in the stem, 48-63 only in layer1.0.conv2, 32-47 in neither.
    stem = [1.0] * 32 + [LOW] * 32
    branch = [1.0] * 16 + [LOW] * 32 + [1.0] * 16
    set_norms(bb(model).conv1, stem)
    set_norms(bb(model).layer1[0].conv2, branch)
    prune_model(
        model, PruneOptions(pth, equalization=criterion, granularity=8, min_filters=8), EXAMPLE
    )
    b = bb(model)
    assert b.conv1.out_channels == b.layer1[0].conv2.out_channels == kept
    assert b.layer1[0].conv1.in_channels == b.layer2[0].conv1.in_channels == kept
    assert b.layer2[0].downsample[0].in_channels == kept
    _residuals_consistent(model)


def test_union_keeps_the_strongest_channels_of_either_branch() -> None:
    model = uniform_resnet()
    stem = [1.0] * 32 + [LOW] * 32
    set_norms(bb(model).conv1, stem)
    set_norms(bb(model).layer1[0].conv2, [LOW] * 48 + [1.0] * 16)
    original = bb(model).conv1.weight.detach().clone()
    prune_model(model, PruneOptions(0.1, granularity=8, min_filters=8), EXAMPLE)
    kept = bb(model).conv1.weight.detach()
    assert torch.equal(kept, torch.cat([original[:32], original[48:]]))


def test_threshold_zero_prunes_nothing(tmp_path: Path) -> None:
    settings = tiny_settings()
    model = DetectNetV2(settings.model, 2)
    source = save_model(model, settings, tmp_path / "model.pt")
    report = prune_checkpoint(source, tmp_path / "pruned.pt", PruneOptions(threshold=0.0))
    assert report.after == report.before and report.channels == {}
    pruned, _ = load_pruned(tmp_path / "pruned.pt")
    assert same_tensors(pruned, model)


def test_heads_outputs_are_never_pruned() -> None:
    model = uniform_resnet()
    set_norms(model.cov, [1.0, LOW])
    set_norms(model.bbox, [LOW] * 8)
    prune_model(model, PruneOptions(0.5, min_filters=1, granularity=1), EXAMPLE)
    assert (model.cov.out_channels, model.bbox.out_channels) == (2, 8)


def test_pruned_checkpoint_round_trips_and_exports_to_onnx(tmp_path: Path) -> None:
    import onnxruntime as ort

    model = uniform_resnet()
    set_norms(bb(model).layer3[0].conv1, _low_tail(256, 64))
    settings = tiny_settings()
    source = save_model(model, settings, tmp_path / "model.pt")
    prune_checkpoint(source, tmp_path / "pruned.pt", PruneOptions(0.1))
    saved = ckpt.load(tmp_path / "pruned.pt")
    assert saved.metrics and saved.metrics["pruning"]["options"]["threshold"] == 0.1
    pruned, _ = load_pruned(tmp_path / "pruned.pt")
    assert bb(pruned).layer3[0].conv1.out_channels == 64
    pruned.eval()
    onnx_path = tmp_path / "pruned.onnx"
    with warnings.catch_warnings():  # the tracer's notes on forward()'s fixed `logits` flag
        warnings.simplefilter("ignore")
        torch.onnx.export(
            pruned,
            (EXAMPLE,),
            str(onnx_path),
            input_names=[INPUT_NAME],
            output_names=[COV_NAME, BBOX_NAME],
            opset_version=17,
            dynamo=False,
        )
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    cov, bbox = session.run([COV_NAME, BBOX_NAME], {INPUT_NAME: EXAMPLE.numpy()})
    with torch.no_grad():
        cov_t, bbox_t = pruned(EXAMPLE)
    np.testing.assert_allclose(cov, cov_t.numpy(), atol=1e-5)
    np.testing.assert_allclose(bbox, bbox_t.numpy(), atol=1e-4)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"threshold": 1.5}, "--pth"),
        ({"threshold": -0.1}, "--pth"),
        ({"normalizer": "L3"}, "--normalizer"),
        ({"equalization": "average"}, "--equalization"),
        ({"granularity": 0}, "--granularity"),
        ({"min_filters": 0}, "--min-filters"),
    ],
)
def test_bad_options_name_the_option(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(PruneError, match=f"\\[{field}\\] expected"):
        PruneOptions(**kwargs)  # type: ignore[arg-type]


def test_state_of_another_network_is_refused() -> None:
    settings = tiny_settings()
    state = DetectNetV2(tiny_settings("mobilenet_v2").model, 2).state_dict()
    with pytest.raises(PrunedModelError, match=r"missing tensor 'backbone\.conv1\.weight'"):
        model_from_state(settings, state, "other.pt")
    three = DetectNetV2(settings.model, 3).state_dict()
    with pytest.raises(
        PrunedModelError, match="3 coverage and 12 bbox channels, the settings' 2 classes"
    ):
        model_from_state(settings, three, "three.pt")


def test_stride_8_neck_prunes_with_the_backbone_and_keeps_the_grid(tmp_path: Path) -> None:
    settings = tiny_settings("mobilenet_v2", 18)
    settings = replace(settings, model=replace(settings.model, output_stride=8))
    model = DetectNetV2(settings.model, 2)
    for m in model.modules():  # half the filters of every layer, neck included, are weak
        if isinstance(m, nn.Conv2d) and m not in (model.cov, model.bbox):
            set_norms(m, torch.rand(m.out_channels) * 0.1 + (torch.arange(m.out_channels) % 2))
    source = save_model(model, settings, tmp_path / "model.pt")
    report = prune_checkpoint(source, tmp_path / "pruned.pt", PruneOptions(threshold=0.3))
    assert report.after.parameters < report.before.parameters
    pruned, _ = load_pruned(tmp_path / "pruned.pt")
    assert channel_layout(pruned)["neck.fuse.0"] < 64
    cov, bbox = pruned(EXAMPLE)
    assert cov.shape == (1, 2, INPUT[1] // 8, INPUT[0] // 8)
    assert bbox.shape == (1, 8, INPUT[1] // 8, INPUT[0] // 8)
