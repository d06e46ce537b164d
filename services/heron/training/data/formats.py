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


# The reference workflow's mapping for the face-mask sets; face-only sets keep `face`.
FORMATS: Mapping[SourceFormat, FormatInfo] = {
    SourceFormat.VOC: FormatInfo(
        from_voc,
        {"with_mask": "Mask", "without_mask": "No-Mask", "mask_weared_incorrect": "No-Mask"},
    ),
    SourceFormat.KAGGLE: FormatInfo(
        from_kaggle,
        {
            "face_with_mask": "Mask",
            "face_no_mask": "No-Mask",
            "face_with_mask_incorrect": "No-Mask",
        },
    ),
    SourceFormat.MAFA: FormatInfo(from_mafa, {"masked_face": "Mask", "unmasked_face": "No-Mask"}),
    SourceFormat.FDDB: FormatInfo(from_fddb, {"face": "face"}),
    SourceFormat.WIDER: FormatInfo(from_wider, {"face": "face"}),
}
