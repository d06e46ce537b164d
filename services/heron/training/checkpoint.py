"""Checkpoints: weights, optimiser, loss weights, progress and the settings, in one .pt file.

Only tensors and plain data are stored, so `torch.load(weights_only=True)` reads them back
(no pickled code runs on load). The settings travel with the weights: `heron infer` and
`heron evaluate` need nothing but the checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from heron.core.outputs import atomic_file
from heron.training.settings import SettingsError, TrainingSettings

FORMAT = "heron-detectnet_v2/1"
LAST = "last.pt"


class CheckpointError(ValueError):
    """A checkpoint file is missing, not a Heron checkpoint, or incomplete."""


@dataclass
class Checkpoint:
    settings: TrainingSettings
    model: dict[str, torch.Tensor]
    epoch: int  # epochs completed
    step: int  # optimiser steps completed
    optimizer: dict[str, Any] | None = None
    cost: dict[str, torch.Tensor] | None = None
    metrics: dict[str, Any] | None = None
    training_model: dict[str, torch.Tensor] | None = None
    """The optimiser's own weights when `model` holds their moving average
    (`training_config.ema_decay`); kept only for resuming."""


def save(path: Path, checkpoint: Checkpoint) -> None:
    """Write atomically (temporary file, then rename) so a killed job leaves no torn file."""
    data = {
        "format": FORMAT,
        "settings": checkpoint.settings.to_dict(),
        "model": {k: v.detach().cpu() for k, v in checkpoint.model.items()},
        "epoch": checkpoint.epoch,
        "step": checkpoint.step,
        "optimizer": checkpoint.optimizer,
        "cost": checkpoint.cost,
        "metrics": checkpoint.metrics or {},
    }
    if checkpoint.training_model is not None:
        data["training_model"] = {k: v.detach().cpu() for k, v in checkpoint.training_model.items()}
    with atomic_file(path) as tmp:
        torch.save(data, tmp)


def load(path: Path | str, *, with_training_state: bool = True) -> Checkpoint:
    """Read a checkpoint; CheckpointError names the file and what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a file that is not a checkpoint
        raise CheckpointError(
            f"{path}: not a PyTorch checkpoint ({type(e).__name__}: {e})"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(
            f"{path}: not a Heron DetectNet_v2 checkpoint (format {got!r}, expected {FORMAT!r})"
        )
    missing = [k for k in ("settings", "model", "epoch", "step") if k not in data]
    if missing:
        raise CheckpointError(f"{path}: incomplete checkpoint, missing {missing}")
    try:
        settings = TrainingSettings.from_dict(data["settings"])
    except SettingsError as e:
        raise CheckpointError(f"{path}: stored settings are invalid: {e}") from None
    return Checkpoint(
        settings=settings,
        model=data["model"],
        epoch=int(data["epoch"]),
        step=int(data["step"]),
        optimizer=data.get("optimizer") if with_training_state else None,
        cost=data.get("cost") if with_training_state else None,
        metrics=data.get("metrics"),
        training_model=data.get("training_model") if with_training_state else None,
    )


def epoch_path(results: Path, epoch: int) -> Path:
    return results / "checkpoints" / f"epoch_{epoch:03d}.pt"


def last_path(results: Path) -> Path:
    return results / "checkpoints" / LAST
