"""A same-host ring of frame slots in POSIX shared memory: one writer, any number of readers.

The writer (`SharedMemoryRing.create`) puts frames round-robin into `slots` fixed slots, so
memory is bounded by `slots * slot_bytes` whatever the readers do. Each put returns a
`heron.v1.SharedMemorySlot` naming the segment, slot, offset, size and *generation* (the
put's sequence number). Readers (`SharedMemoryRing.attach`, read-only) get the frame back as a
zero-copy numpy view or a copy; once the writer has lapped the ring the slot holds a newer
generation and `get` raises FrameOverwrittenError instead of returning someone else's frame.

A zero-copy view is only good until the writer comes round again: check `is_current(slot)`
after using it, or ask for `copy=True`, which validates the generation before and after the
copy (a seqlock: the writer marks the slot busy, writes, then publishes the new generation).
"""

from __future__ import annotations

import math
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt

from heron.core.framestore.errors import (
    BadFrameRefError,
    FrameOverwrittenError,
    FrameTooLargeError,
)
from heron.core.framestore.layout import (
    BUSY,
    MAX_NDIM,
    Layout,
    SlotHeader,
    check_dtype,
    mark_busy,
    read_generation,
)
from heron.core.framestore.segment import Segment
from heron.v1.frame_pb2 import SharedMemorySlot


class Reservation:
    """A slot handed to the writer to fill in place (e.g. `cv2.resize(..., dst=r.array)`)."""

    def __init__(self, ring: SharedMemoryRing, slot: int, generation: int, array: Any) -> None:
        self.ring = ring
        self.slot = slot
        self.generation = generation
        self.array: npt.NDArray[Any] = array
        self.committed = False

    def commit(self) -> SharedMemorySlot:
        """Publish the frame written into `array`; returns the reference readers need."""
        return self.ring._commit(self)


class SharedMemoryRing:
    """See the module docstring. Build with `create` (writer) or `attach` (reader)."""

    def __init__(self, segment: Segment, layout: Layout) -> None:
        self._segment = segment
        self.layout = layout
        self._sequence = 0
        self._open: Reservation | None = None

    @classmethod
    def create(cls, name: str, slots: int, slot_bytes: int) -> SharedMemoryRing:
        """A new ring; `name` from `names.segment_name` (FileExistsError if taken)."""
        if slots < 1 or slot_bytes < 1:
            raise ValueError(
                f"ring {name!r}: expected slots >= 1 and slot_bytes >= 1, got slots={slots}, "
                f"slot_bytes={slot_bytes}"
            )
        layout = Layout(slots, slot_bytes)
        segment = Segment.create(name, layout.total)
        for slot in range(slots):
            mark_busy(segment.mapping, layout.header_offset(slot))
        layout.write_ring_header(segment.mapping)
        return cls(segment, layout)

    @classmethod
    def attach(cls, name: str) -> SharedMemoryRing:
        """Open another process's ring read-only (SegmentNotFoundError if there is none)."""
        segment = Segment.attach(name)
        try:
            layout = Layout.read(segment.mapping, name)
        except BadFrameRefError:
            segment.close()
            raise
        return cls(segment, layout)

    @property
    def name(self) -> str:
        return self._segment.name

    @property
    def slots(self) -> int:
        return self.layout.slots

    @property
    def slot_bytes(self) -> int:
        return self.layout.slot_bytes

    @property
    def closed(self) -> bool:
        return self._segment.closed

    # --- writing ------------------------------------------------------------------------------

    def reserve(self, shape: tuple[int, ...], dtype: npt.DTypeLike = np.uint8) -> Reservation:
        """The next slot, marked busy, as a writable array of `shape`; `commit()` publishes it.

        A reservation never committed (the fill failed) is simply replaced by the next one;
        its slot stays busy, so readers of its old frame see it as overwritten.
        """
        if not self._segment.writable:
            raise PermissionError(f"ring {self.name!r} is attached read-only: only its writer puts")
        dt = check_dtype(np.dtype(dtype))
        if not 1 <= len(shape) <= MAX_NDIM or any(d < 1 for d in shape):
            raise ValueError(
                f"ring {self.name!r}: expected 1-{MAX_NDIM} positive dims, got {shape}"
            )
        size = math.prod(shape) * dt.itemsize
        if size > self.slot_bytes:
            raise FrameTooLargeError(
                f"ring {self.name!r}: a {shape} {dt} frame is {size} B, a slot holds "
                f"{self.slot_bytes} B"
            )
        slot = self._sequence % self.slots
        generation = self._sequence + 1
        mark_busy(self._segment.mapping, self.layout.header_offset(slot))
        flat = self._segment.array(dt, math.prod(shape), self.layout.data_offset(slot))
        self._sequence += 1
        self._open = Reservation(self, slot, generation, flat.reshape(shape))
        return self._open

    def put(self, image: npt.NDArray[Any]) -> SharedMemorySlot:
        """Copy `image` into the next slot; returns the reference (with its generation)."""
        reservation = self.reserve(image.shape, image.dtype)
        np.copyto(reservation.array, image)
        return reservation.commit()

    def _commit(self, reservation: Reservation) -> SharedMemorySlot:
        if reservation is not self._open or reservation.committed:
            raise RuntimeError(f"ring {self.name!r}: reservation already committed or replaced")
        array = reservation.array
        header = SlotHeader(reservation.generation, array.nbytes, array.dtype, array.shape)
        header.pack_into(self._segment.mapping, self.layout.header_offset(reservation.slot))
        reservation.committed = True
        return SharedMemorySlot(
            segment=self.name,
            slot=reservation.slot,
            offset=self.layout.data_offset(reservation.slot),
            size=array.nbytes,
            generation=reservation.generation,
        )

    # --- reading ------------------------------------------------------------------------------

    def get(self, ref: SharedMemorySlot, *, copy: bool = False) -> npt.NDArray[Any]:
        """The frame `ref` names: a read-only zero-copy view, or a private copy.

        Raises FrameOverwrittenError when the slot moved on, BadFrameRefError when `ref` does
        not fit this ring.
        """
        header = self._header(ref)
        view = self._segment.array(header.dtype, math.prod(header.shape), ref.offset).reshape(
            header.shape
        )
        if not copy:
            return view
        result = view.copy()
        self._check_generation(ref)  # the writer may have started over while we copied
        return result

    def is_current(self, ref: SharedMemorySlot) -> bool:
        """Whether the slot still holds `ref`'s frame (check after using a zero-copy view)."""
        offset = self.layout.header_offset(ref.slot)
        return read_generation(self._segment.mapping, offset) == ref.generation

    def _header(self, ref: SharedMemorySlot) -> SlotHeader:
        self._check_ref(ref)
        header = SlotHeader.unpack_from(self._segment.mapping, self.layout.header_offset(ref.slot))
        self._compare_generation(ref, header.generation)
        if header.size != ref.size:
            raise BadFrameRefError(
                f"segment {self.name!r} slot {ref.slot}: the reference says {ref.size} B, "
                f"the slot holds a {header.size} B frame of shape {header.shape}"
            )
        return header

    def _check_ref(self, ref: SharedMemorySlot) -> None:
        where = f"SharedMemorySlot for segment {ref.segment!r}"
        if ref.segment != self.name:
            raise BadFrameRefError(f"{where}: this ring is {self.name!r}")
        if ref.slot >= self.slots:
            raise BadFrameRefError(f"{where}: slot {ref.slot}, expected 0..{self.slots - 1}")
        expected = self.layout.data_offset(ref.slot)
        if ref.offset != expected:
            raise BadFrameRefError(
                f"{where}: offset {ref.offset} for slot {ref.slot}, expected {expected}"
            )
        if not 0 < ref.size <= self.slot_bytes:
            raise BadFrameRefError(
                f"{where}: size {ref.size}, expected 1..{self.slot_bytes} (the slot size)"
            )
        if ref.generation == BUSY:
            raise BadFrameRefError(f"{where}: generation 0, expected >= 1 (0 is never written)")

    def _check_generation(self, ref: SharedMemorySlot) -> None:
        offset = self.layout.header_offset(ref.slot)
        self._compare_generation(ref, read_generation(self._segment.mapping, offset))

    def _compare_generation(self, ref: SharedMemorySlot, found: int) -> None:
        if found == ref.generation:
            return
        if found != BUSY and found < ref.generation:
            raise BadFrameRefError(
                f"segment {self.name!r} slot {ref.slot}: the reference has generation "
                f"{ref.generation}, newer than anything written there ({found})"
            )
        raise FrameOverwrittenError(self.name, ref.slot, ref.generation, found)

    # --- life cycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Unmap (views still alive keep the memory mapped until they are freed)."""
        self._segment.close()

    def unlink(self) -> None:
        """Remove the segment's name (the writer does this; idempotent)."""
        self._segment.unlink()

    def __enter__(self) -> SharedMemoryRing:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """The writer unlinks and closes; a reader only closes."""
        if self._segment.owner:
            self.unlink()
        self.close()
