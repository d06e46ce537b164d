"""Checkpoints round-trip, and malformed files give errors that name the file and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from heron.training import checkpoint as ckpt
from heron.training.model import DetectNetV2

from tests.training.conftest import tiny_settings


def test_round_trip(tmp_path: Path) -> None:
    s = tiny_settings()
    model = DetectNetV2(s.model, len(s.classes))
    path = tmp_path / "c.pt"
    ckpt.save(path, ckpt.Checkpoint(s, model.state_dict(), epoch=3, step=12, metrics={"loss": 1.0}))
    back = ckpt.load(path)
    assert back.settings == s and back.epoch == 3 and back.step == 12
    assert torch.equal(back.model["cov.weight"], model.state_dict()["cov.weight"])


def _write(path: Path, content: object) -> None:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)


def _valid() -> dict[str, object]:
    return {
        "format": ckpt.FORMAT,
        "settings": tiny_settings().to_dict(),
        "model": {},
        "epoch": 1,
        "step": 1,
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such checkpoint file"),
        (b"\x00garbage", "not a PyTorch checkpoint"),
        ({"weights": 1}, "not a Heron DetectNet_v2 checkpoint"),
        ([1, 2], "not a Heron DetectNet_v2 checkpoint"),
        ({k: v for k, v in _valid().items() if k != "epoch"}, r"missing \['epoch'\]"),
        ({**_valid(), "settings": {"classes": ["a"], "colour": 1}}, r"unknown fields \['colour'\]"),
        ({**_valid(), "settings": {"classes": []}}, "target_classes"),
        (
            {**_valid(), "settings": {**tiny_settings().to_dict(), "model": {"arch": "vgg"}}},
            "model_config.arch",
        ),
    ],
)
def test_malformed_checkpoints(tmp_path: Path, content: object, message: str) -> None:
    path = tmp_path / "bad.pt"
    if content is not None:
        _write(path, content)
    with pytest.raises(ckpt.CheckpointError, match=message) as info:
        ckpt.load(path)
    assert str(path) in str(info.value)
