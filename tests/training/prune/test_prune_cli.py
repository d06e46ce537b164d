"""`heron prune` end to end: TAO's flags, the before/after table, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from heron.training import checkpoint as ckpt
from heron.training.prune.layout import load_pruned
from heron.training.prune_cli import app
from typer.testing import CliRunner

from tests.training.conftest import tiny_settings
from tests.training.prune.helpers import bb, save_model, set_norms, uniform_resnet

runner = CliRunner()


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = uniform_resnet()
    set_norms(bb(model).layer3[0].conv1, [1.0] * 64 + [0.01] * 192)
    return save_model(model, tiny_settings(), tmp_path_factory.mktemp("m") / "model.pt")


@pytest.mark.parametrize(
    "flags",
    [
        ["--pth", "0.1", "--normalizer", "L2", "--equalization", "intersection"],
        ["-pth", "0.1", "-n", "max", "-eq", "union", "-pg", "8", "-nf", "16", "-k", "tlt_encode"],
    ],
)
def test_prune_prints_costs_and_writes_a_loadable_model(
    model_file: Path, tmp_path: Path, flags: list[str]
) -> None:
    out = tmp_path / "pruned.pt"
    result = runner.invoke(app, ["-m", str(model_file), "-o", str(out), *flags])
    assert result.exit_code == 0, result.output
    assert "before" in result.output and "after" in result.output and "GFLOPs" in result.output
    assert "tlt_encode" not in result.output
    pruned, _ = load_pruned(out)
    assert bb(pruned).layer3[0].conv1.out_channels < 256
    saved = ckpt.load(out)
    assert saved.metrics is not None
    before = saved.metrics["pruning"]["before"]["parameters"]
    after = saved.metrics["pruning"]["after"]["parameters"]
    assert after < before and f"{after:,}" in result.output


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--pth", "1.5"], "[--pth] expected a threshold in [0, 1], got 1.5"),
        (["--normalizer", "L1"], "[--normalizer] expected one of ('max', 'L2'), got 'L1'"),
        (["-eq", "mean"], "[--equalization] expected one of"),
        (["-pg", "0"], "[--granularity] expected an integer >= 1, got 0"),
    ],
)
def test_bad_options_fail_clearly(
    model_file: Path, tmp_path: Path, flags: list[str], message: str
) -> None:
    out = tmp_path / "pruned.pt"
    result = runner.invoke(app, ["-m", str(model_file), "-o", str(out), *flags])
    assert result.exit_code == 1
    assert message in " ".join(result.output.split())
    assert not out.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a checkpoint at all", "not a PyTorch checkpoint"),
        (None, "no such checkpoint file"),
    ],
)
def test_non_checkpoint_files_fail_clearly(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    bad = tmp_path / "model.pt"
    if content is not None:
        bad.write_bytes(content)
    result = runner.invoke(app, ["-m", str(bad), "-o", str(tmp_path / "out.pt")])
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert str(bad) in text.replace(" ", "") or bad.name in text
    assert message in text


def test_a_plain_torch_file_is_not_a_heron_checkpoint(tmp_path: Path) -> None:
    import torch

    bad = tmp_path / "weights.pt"
    torch.save(uniform_resnet().state_dict(), bad)
    result = runner.invoke(app, ["-m", str(bad), "-o", str(tmp_path / "out.pt")])
    assert result.exit_code == 1
    assert "not a Heron DetectNet_v2 checkpoint" in " ".join(result.output.split())
