"""Training data: KITTI samples → labelled images → one uint8 cache → batches on the device.

The GPU input pipeline is built for throughput (≥ 1,500 images/s at 960×544 on an H100):
every image is decoded and resized to the network input once (`DetectionDataset`, threads,
torchvision's decoders in `heron.evaluation.images` — no OpenCV needed), kept as uint8 in one
tensor (`ImageCache`, on the GPU when it fits, else in pinned host memory), and each step takes
a batch by index and augments it on the device (`heron.training.augment`). No per-step JPEG
decoding, no worker processes, no host→device copy of float images.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from heron.evaluation.images import network_input
from heron.evaluation.kitti import KittiSample, read_label_file
from heron.training.settings import TrainingSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelledImage:
    """One image and its trained-on boxes (pixels of the file) with class indices."""

    image: Path
    boxes: np.ndarray  # (M, 4) float32 x1 y1 x2 y2
    labels: np.ndarray  # (M,) int64 index into settings.classes


@dataclass
class LabelSummary:
    images: int = 0
    boxes: Counter[str] = field(default_factory=Counter)
    ignored: Counter[str] = field(default_factory=Counter)
    """Dataset classes not mapped to a target class (TAO drops them too)."""


class ClassMismatchError(ValueError):
    """The data's labels and the spec's classes do not meet; the message names both sides."""


def from_kitti(
    samples: Iterable[KittiSample], settings: TrainingSettings
) -> tuple[list[LabelledImage], LabelSummary]:
    """Read every label file; map dataset classes to target classes (unmapped ones dropped)."""
    index = {name: i for i, name in enumerate(settings.classes)}
    out: list[LabelledImage] = []
    summary = LabelSummary()
    for sample in samples:
        boxes, labels = [], []
        for obj in read_label_file(sample.label):
            target = settings.target_of(obj.name)
            if target is None:
                summary.ignored[obj.name] += 1
                continue
            summary.boxes[target] += 1
            boxes.append(obj.box)
            labels.append(index[target])
        out.append(
            LabelledImage(
                sample.image,
                np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
                np.asarray(labels, dtype=np.int64),
            )
        )
    summary.images = len(out)
    _check_classes_meet(summary, settings)
    return out, summary


def _check_classes_meet(summary: LabelSummary, settings: TrainingSettings) -> None:
    """Labels that all miss the spec are an error (training on them learns nothing); a class of
    the spec no label reaches, beside labels nothing reads, a warning (a spelling apart)."""
    if not summary.ignored:
        return
    data = ", ".join(f"{name} ({n})" for name, n in summary.ignored.most_common())
    if settings.class_mapping:
        keys = ", ".join(f"{k} -> {v}" for k, v in sorted(settings.class_mapping.items()))
        spec = f"the spec's dataset_config.target_class_mapping reads {keys}"
    else:
        spec = f"the spec's classes are {', '.join(settings.classes)}"
    if not summary.boxes:
        raise ClassMismatchError(
            f"no label of the data is a class of the spec: the data's labels are {data}; "
            f"{spec}. Name the labels as the spec does (KITTI labels are lower case: "
            "heron data convert writes mask and no-mask; see docs/data.md#class-names)"
        )
    for target in settings.classes:
        if not summary.boxes[target]:
            log.warning(
                "class %r of the spec gets no box; labels no class reads: %s (%s)",
                target, data, spec,
            )  # fmt: skip


class DetectionDataset(Dataset[tuple[Tensor, Tensor, Tensor]]):
    """Item i: (uint8 image (3, H, W) at the network input size, boxes (M, 4) scaled with it,
    labels (M,))."""

    def __init__(self, items: Sequence[LabelledImage], width: int, height: int) -> None:
        self.items = list(items)
        self.width = width
        self.height = height

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, Tensor]:
        item = self.items[i]
        image, boxes = network_input(item.image, item.boxes, self.width, self.height)
        return image, boxes, torch.from_numpy(item.labels)


@dataclass
class ImageCache:
    """All images of a dataset as one uint8 tensor, boxes padded to the most per image."""

    images: Tensor  # (N, 3, H, W) uint8
    boxes: Tensor  # (N, M, 4) float32, network-input pixels
    labels: Tensor  # (N, M) int64, −1 = padding

    @classmethod
    def build(cls, dataset: DetectionDataset, device: torch.device, workers: int = 4) -> ImageCache:
        n = len(dataset)
        images = torch.empty(n, 3, dataset.height, dataset.width, dtype=torch.uint8)
        box_list: list[Tensor] = []
        label_list: list[Tensor] = []
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for i, (image, boxes, labels) in enumerate(pool.map(dataset.__getitem__, range(n))):
                images[i] = image
                box_list.append(boxes)
                label_list.append(labels)
        most = max((len(b) for b in box_list), default=0)
        boxes_t = torch.zeros(n, max(most, 1), 4)
        labels_t = torch.full((n, max(most, 1)), -1, dtype=torch.int64)
        for i, (b, lab) in enumerate(zip(box_list, label_list, strict=True)):
            boxes_t[i, : len(b)] = b
            labels_t[i, : len(lab)] = lab
        return cls(_place(images, device), boxes_t.to(device), labels_t.to(device))

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def batch(self, index: Tensor, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        """Images, boxes, labels of `index`, on `device`."""
        index = index.to(self.images.device)
        images = self.images.index_select(0, index).to(device, non_blocking=True)
        index = index.to(self.boxes.device)
        return images, self.boxes[index].to(device), self.labels[index].to(device)

    def batches(
        self,
        batch_size: int,
        device: torch.device,
        *,
        seed: int,
        epoch: int,
        shuffle: bool = True,
        rank: int = 0,
        world: int = 1,
        drop_last: bool = True,
    ) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        """One epoch of batches; every rank draws the same permutation and takes its share."""
        order = torch.arange(len(self))
        if shuffle:
            gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
            order = torch.randperm(len(self), generator=gen)
        order = order[rank::world]
        stop = len(order) - (len(order) % batch_size if drop_last else 0)
        for start in range(0, stop, batch_size):
            yield self.batch(order[start : start + batch_size], device)

    def steps_per_epoch(self, batch_size: int, world: int = 1) -> int:
        return max(1, (len(self) // world) // batch_size)


def _place(images: Tensor, device: torch.device) -> Tensor:
    """On the GPU when the cache takes under a third of its free memory, else pinned."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if images.numel() < free / 3:
            return images.to(device)
        return images.pin_memory()
    return images
