"""The raw data sets `heron data convert` reads, each with its default class map."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from heron.training.data.fddb import from_fddb
from heron.training.data.kaggle import from_kaggle
from heron.training.data.mafa import from_mafa
from heron.training.data.sample import Sample
from heron.training.data.voc import from_voc
from heron.training.data.wider import from_wider

Reader = Callable[[Path, Path | None], Iterator[Sample]]


class SourceFormat(StrEnum):
    VOC = "voc"
    KAGGLE = "kaggle"
    MAFA = "mafa"
    FDDB = "fddb"
    WIDER = "wider"


@dataclass(frozen=True)
class FormatInfo:
    read: Reader
    default_class_map: Mapping[str, str]


# The reference workflow's mapping for the face-mask sets; face-only sets keep `face`. The
# labels are lower case, as TAO's dataset_convert writes KITTI classes: the committed spec's
# target_class_mapping reads `mask` and `no-mask` and names the network's classes Mask and
# No-Mask (docs/data.md#class-names).
MASK, NO_MASK = "mask", "no-mask"
FORMATS: Mapping[SourceFormat, FormatInfo] = {
    SourceFormat.VOC: FormatInfo(
        from_voc,
        {"with_mask": MASK, "without_mask": NO_MASK, "mask_weared_incorrect": NO_MASK},
    ),
    SourceFormat.KAGGLE: FormatInfo(
        from_kaggle,
        {"face_with_mask": MASK, "face_no_mask": NO_MASK, "face_with_mask_incorrect": NO_MASK},
    ),
    SourceFormat.MAFA: FormatInfo(from_mafa, {"masked_face": MASK, "unmasked_face": NO_MASK}),
    SourceFormat.FDDB: FormatInfo(from_fddb, {"face": "face"}),
    SourceFormat.WIDER: FormatInfo(from_wider, {"face": "face"}),
}
