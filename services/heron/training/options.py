"""`TrainOptions`: how a training run goes (device, threads, progress), not what it learns.

Kept apart from `train.py` so that the Job's request (`heron.training.JobRequest`) can carry
options without importing torch: `heron --help` and the demo's CLI import training's public
entry point and must stay fast.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from heron.training.losses import CoverageLoss


@dataclass(frozen=True)
class TrainOptions:
    """How to run (not what to learn: that is the spec)."""

    device: str | None = None  # default: cuda when available
    amp: bool | None = None  # bf16 autocast; default: on for CUDA
    channels_last: bool | None = None  # default: on for CUDA
    compile: bool = False  # torch.compile the network
    # cuDNN autotuning: faster steps, but it tries every kernel of every layer first (about
    # 35 s for MobileNetV2 at 960×544 on an H100), a fifth of a short run.
    cudnn_benchmark: bool = True
    workers: int = 4  # image decoding threads when the cache is built
    resume: bool = True
    # Rank 0's progress: a bar on a terminal; elsewhere a line each epoch (epoch, loss, images/s,
    # time left) and every 30 s within one. With progress_logs, log records carrying those numbers
    # as fields instead (the Job's JSON logs), bar or not.
    progress: bool = True
    progress_logs: bool = False
    validate: bool = True
    coverage_loss: CoverageLoss = "bce"
    max_steps_per_epoch: int | None = None  # cap, for smoke tests and the demo's short epochs


class DeviceError(ValueError):
    """A --device that names no device training can use; the message says what to give."""


_DEVICE = re.compile(r"cpu|cuda(:\d+)?")


def check_device(device: str | None) -> None:
    """`cpu`, `cuda` or `cuda:N` (None: the best there is), checked without torch; whether
    that GPU exists is `heron.training.distributed.check_cuda`'s check."""
    if device is not None and not _DEVICE.fullmatch(device):
        raise DeviceError(f"--device: expected cpu, cuda or cuda:N (N = 0, 1, ...), got {device!r}")
