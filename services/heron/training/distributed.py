"""torchrun DDP set-up: rank, world size and device from the environment torchrun sets."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from heron.training.options import DeviceError, check_device


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    local_rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        """Only rank 0 writes files and prints."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()


def setup(device: str | None) -> tuple[Dist, torch.device]:
    """Join the process group when started by torchrun (WORLD_SIZE > 1); pick the device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        rank = int(os.environ["RANK"])
        local = int(os.environ.get("LOCAL_RANK", "0"))
        cuda = torch.cuda.is_available() and device != "cpu"
        if cuda:
            torch.cuda.set_device(local)
        if not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if cuda else "gloo")
        return Dist(rank, local, world), torch.device(f"cuda:{local}" if cuda else "cpu")
    if device:
        check_cuda(device)
        return Dist(), torch.device(device)
    return Dist(), torch.device("cuda" if torch.cuda.is_available() else "cpu")


def check_cuda(device: str) -> None:
    """A `cuda`/`cuda:N` device that this machine has; DeviceError saying what it has else."""
    check_device(device)
    if not device.startswith("cuda"):
        return
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise DeviceError(
            f"--device {device}: no CUDA GPU is available here (torch sees none); use --device "
            "cpu, or leave --device out to use a GPU only when there is one"
        )
    index = int(device.partition(":")[2] or 0)
    if index >= count:
        raise DeviceError(
            f"--device {device}: this machine has {count} CUDA GPU(s), cuda:0..cuda:{count - 1}"
        )


def teardown(dist: Dist) -> None:
    if dist.enabled and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
