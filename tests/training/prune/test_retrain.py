"""A pruned model retrains through the real training loop (TAO's `load_graph: true`)."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from heron.training import train as train_module
from heron.training.dataset import LabelledImage
from heron.training.metrics_log import read_metrics
from heron.training.model import DetectNetV2, LoadReport
from heron.training.prune.layout import PrunedModelError, channel_layout, load_graph, load_pruned
from heron.training.prune.pruner import PruneOptions, prune_checkpoint
from heron.training.settings import ModelSettings
from heron.training.train import TrainOptions, train
from torch import nn

from tests.training.conftest import tiny_settings
from tests.training.prune.helpers import bb, save_model, set_norms

CPU = TrainOptions(device="cpu", progress=False, workers=2, validate=False)


@pytest.fixture(scope="module")
def pruned_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    settings = tiny_settings()
    torch.manual_seed(0)
    model = DetectNetV2(settings.model, 2)
    for m in model.backbone.modules():  # every other filter weak: pruning halves the network
        if isinstance(m, nn.Conv2d):
            norms = 0.05 + (torch.arange(m.out_channels) % 2).float()
            set_norms(m, norms * m.weight.detach().flatten(1).norm(dim=1).mean())
    folder = tmp_path_factory.mktemp("pruned")
    source = save_model(model, settings, folder / "model.pt")
    prune_checkpoint(source, folder / "pruned.pt", PruneOptions(threshold=0.2))
    return folder / "pruned.pt"


@pytest.mark.shared_data
def test_pruned_model_retrains(
    pruned_file: Path,
    real_items: list[LabelledImage],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What `build_model` does once the spec's load_graph reaches it (docs/pruning.md).
    def build(settings: ModelSettings, num_classes: int) -> tuple[DetectNetV2, LoadReport]:
        return load_graph(settings, num_classes, pruned_file)

    monkeypatch.setattr(train_module, "build_model", build)
    result = train(tiny_settings(num_epochs=6), real_items[:8], [], tmp_path, CPU)
    losses = [r["loss"] for r in read_metrics(tmp_path / "metrics.jsonl")]
    assert len(losses) == 6 and all(math.isfinite(x) for x in losses)
    assert losses[-1] < 0.8 * losses[0]
    retrained, _ = load_pruned(result.final_model)
    pruned, _ = load_pruned(pruned_file)
    assert channel_layout(retrained) == channel_layout(pruned)
    assert bb(retrained).layer1[0].conv1.out_channels == 32


def test_load_graph_refuses_another_backbone_or_class_count(pruned_file: Path) -> None:
    resnet18 = tiny_settings(num_layers=18).model
    with pytest.raises(
        PrunedModelError, match="pruned model is resnet10, the spec asks for resnet18"
    ):
        load_graph(resnet18, 2, pruned_file)
    with pytest.raises(PrunedModelError, match="2 classes"):
        load_graph(tiny_settings().model, 3, pruned_file)


def test_load_graph_applies_the_spec_freeze(pruned_file: Path) -> None:
    model, report = load_graph(replace(tiny_settings().model, freeze_blocks=(0, 1)), 2, pruned_file)
    assert "load_graph" in str(report)
    assert not any(p.requires_grad for p in bb(model).layer1.parameters())
    assert all(p.requires_grad for p in bb(model).layer2.parameters())
