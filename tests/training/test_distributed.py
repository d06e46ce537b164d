"""Two-process DDP on CPU (gloo), started the way torchrun starts workers: env vars per rank."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from heron.training.dataset import LabelledImage
from heron.training.metrics_log import read_metrics
from heron.training.train import TrainOptions, train
from torch.multiprocessing.spawn import spawn

from tests.training.conftest import tiny_settings

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]


def _worker(rank: int, port: int, items: list[LabelledImage], results: Path) -> None:
    os.environ.update(
        WORLD_SIZE="2",
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    result = train(
        tiny_settings(num_epochs=1),
        items,
        items[:4],
        results,
        TrainOptions(device="cpu", progress=False, workers=1),
    )
    (results / f"rank{rank}.txt").write_text(f"{result.epochs} {result.steps}")


def test_two_ranks_share_the_data_and_only_rank_0_writes(
    real_items: list[LabelledImage], tmp_path: Path
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spawn(_worker, args=(port, real_items, tmp_path), nprocs=2, join=True)  # type: ignore[no-untyped-call]
    # 16 images, 2 ranks, batch 4: 2 steps per epoch on each rank, 1 epoch
    assert (tmp_path / "rank0.txt").read_text() == "1 2"
    assert (tmp_path / "rank1.txt").read_text() == "1 2"
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["epoch"] for r in records] == [1]  # one writer: no duplicate lines
    assert all("mAP" in r for r in records)
