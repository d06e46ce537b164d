"""Pruned checkpoints through the training code's own entry points (TAO's `load_graph`):
`ModelSettings.load_graph`, `build_model` calling `load_graph`, and `predict`/`export` reading
narrowed checkpoints (docs/pruning.md)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from heron.training.prune.layout import channel_layout, load_pruned
from heron.training.prune.pruner import PruneOptions, prune_checkpoint

from tests.training.conftest import tiny_settings
from tests.training.prune.helpers import bb, save_model, set_norms, uniform_resnet


@pytest.fixture(scope="module")
def pruned_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = uniform_resnet()
    set_norms(bb(model).layer2[0].conv1, [1.0] * 40 + [0.01] * 88)
    folder = tmp_path_factory.mktemp("pruned")
    source = save_model(model, tiny_settings(), folder / "model.pt")
    prune_checkpoint(source, folder / "pruned.pt", PruneOptions(0.1))
    return folder / "pruned.pt"


def test_build_model_with_load_graph_builds_the_pruned_network(pruned_file: Path) -> None:
    from heron.training.network import build_model

    spec_model = replace(  # type: ignore[call-arg,unused-ignore]
        tiny_settings().model, pretrained_model_file=str(pruned_file), load_graph=True
    )
    model, report = build_model(spec_model, 2)
    assert bb(model).layer2[0].conv1.out_channels == 40
    assert channel_layout(model) == channel_layout(load_pruned(pruned_file)[0])
    assert report is not None and "load_graph" in str(report)


def test_load_graph_without_a_file_is_refused() -> None:
    from heron.training.settings import SettingsError

    with pytest.raises(SettingsError, match=r"\[model_config\.load_graph\]"):
        replace(tiny_settings().model, load_graph=True)  # type: ignore[call-arg,unused-ignore]


def test_export_and_runner_take_a_pruned_checkpoint(pruned_file: Path, tmp_path: Path) -> None:
    from heron.training.export import export_onnx
    from heron.training.predict import load_runner

    report = export_onnx(pruned_file, tmp_path / "pruned.onnx")
    assert report.max_abs_diff < 1e-4
    runner = load_runner(pruned_file, "cpu")
    cov, bbox = runner(np.zeros((1, 3, 64, 128), dtype=np.float32))
    assert cov.shape == (1, 2, 4, 8) and bbox.shape == (1, 8, 4, 8)
