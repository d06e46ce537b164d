"""Byte layout of a ring segment: one ring header, then per slot a 64-byte header and the data.

    [ring header 64 B][slot 0 header 64 B][slot 0 data, slot_bytes rounded up to 64] [slot 1 ...

The slot header carries the generation (which write put the frame there), the frame's size,
dtype and shape, so a reader needs nothing but the segment name and the slot index.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from heron.core.framestore.errors import BadFrameRefError

MAGIC = b"HERONRG1"
VERSION = 1
ALIGN = 64
RING_HEADER = struct.Struct("<8sIIQQ")  # magic, version, slots, slot_bytes, stride
SLOT_HEADER = struct.Struct("<QQI8s4I")  # generation, size, ndim, dtype, shape[4]
GENERATION = struct.Struct("<Q")
MAX_NDIM = 4
BUSY = 0  # generation while the writer rewrites a slot


def align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


@dataclass(frozen=True)
class Layout:
    slots: int
    slot_bytes: int

    @property
    def stride(self) -> int:
        return ALIGN + align(self.slot_bytes)

    @property
    def total(self) -> int:
        return ALIGN + self.slots * self.stride

    def header_offset(self, slot: int) -> int:
        return ALIGN + slot * self.stride

    def data_offset(self, slot: int) -> int:
        return self.header_offset(slot) + ALIGN

    def write_ring_header(self, mapping: mmap.mmap) -> None:
        RING_HEADER.pack_into(mapping, 0, MAGIC, VERSION, self.slots, self.slot_bytes, self.stride)

    @classmethod
    def read(cls, mapping: mmap.mmap, segment: str) -> Layout:
        """The layout recorded in a segment; refuses segments that are not Heron rings."""
        if len(mapping) < ALIGN:
            raise BadFrameRefError(f"segment {segment!r} is {len(mapping)} bytes: not a ring")
        magic, version, slots, slot_bytes, stride = RING_HEADER.unpack_from(mapping, 0)
        if magic != MAGIC:
            raise BadFrameRefError(
                f"segment {segment!r} is not a Heron frame ring: expected magic {MAGIC!r}, "
                f"got {magic!r}"
            )
        if version != VERSION:
            raise BadFrameRefError(
                f"segment {segment!r}: ring layout version {version}, this reader knows {VERSION}"
            )
        layout = cls(slots, slot_bytes)
        if layout.stride != stride or layout.total > len(mapping):
            raise BadFrameRefError(
                f"segment {segment!r}: header says {slots} slots of {slot_bytes} B "
                f"({layout.total} B) but the segment is {len(mapping)} B"
            )
        return layout


@dataclass(frozen=True)
class SlotHeader:
    generation: int
    size: int
    dtype: np.dtype[Any]
    shape: tuple[int, ...]

    def pack_into(self, mapping: mmap.mmap, offset: int) -> None:
        """Everything but the generation first, then the generation (readers check it last)."""
        shape = list(self.shape) + [0] * (MAX_NDIM - len(self.shape))
        SLOT_HEADER.pack_into(
            mapping, offset, BUSY, self.size, len(self.shape), self.dtype.str.encode(), *shape
        )
        GENERATION.pack_into(mapping, offset, self.generation)

    @classmethod
    def unpack_from(cls, mapping: mmap.mmap, offset: int) -> SlotHeader:
        generation, size, ndim, dtype, *shape = SLOT_HEADER.unpack_from(mapping, offset)
        if generation == BUSY or ndim == 0:
            return cls(generation, size, np.dtype(np.uint8), ())
        return cls(generation, size, np.dtype(dtype.rstrip(b"\0").decode()), tuple(shape[:ndim]))


def read_generation(mapping: mmap.mmap, offset: int) -> int:
    return int(GENERATION.unpack_from(mapping, offset)[0])


def mark_busy(mapping: mmap.mmap, offset: int) -> None:
    GENERATION.pack_into(mapping, offset, BUSY)


def check_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    if dtype.hasobject or dtype.fields is not None or len(dtype.str) > 8:
        raise ValueError(f"ring: expected a plain numeric dtype, got {dtype}")
    return dtype
