"""SharedMemoryRing in one process: round trips, overwrite detection, malformed slots."""

from __future__ import annotations

import numpy as np
import pytest
from heron.core.framestore import (
    BadFrameRefError,
    FrameOverwrittenError,
    FrameTooLargeError,
    SegmentNotFoundError,
    SharedMemoryRing,
    segment_name,
)
from heron.core.framestore.names import MAX_NAME, check_segment_name
from heron.core.framestore.segment import Segment
from heron.v1.frame_pb2 import SharedMemorySlot

from tests.core.framestore.conftest import RingFactory


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [
        ((544, 960, 3), np.uint8),
        ((1, 1, 3), np.uint8),
        ((720, 1280), np.uint8),  # gray
        ((816, 960), np.uint8),  # I420 planes
        ((8, 8, 3), np.float32),
        ((2, 3, 4, 5), np.uint16),
    ],
)
def test_put_get_round_trip_keeps_pixels_shape_and_dtype(
    make_ring: RingFactory, shape: tuple[int, ...], dtype: type
) -> None:
    writer = make_ring(2, 544 * 960 * 3)
    rng = np.random.default_rng(0)
    image: np.ndarray = (rng.random(shape) * 200).astype(dtype)
    slot = writer.put(image)
    reader = SharedMemoryRing.attach(writer.name)
    try:
        for copy in (False, True):
            got = reader.get(slot, copy=copy)
            assert got.shape == shape
            assert got.dtype == np.dtype(dtype)
            np.testing.assert_array_equal(got, image)
    finally:
        del got
        reader.close()
    assert (slot.segment, slot.size, slot.generation) == (writer.name, image.nbytes, 1)


def test_reader_views_are_zero_copy_and_read_only(make_ring: RingFactory) -> None:
    writer = make_ring(1, 300)
    slot = writer.put(np.zeros((10, 10, 3), np.uint8))
    reader = SharedMemoryRing.attach(writer.name)
    view = reader.get(slot)
    copy = reader.get(slot, copy=True)
    assert not view.flags.writeable
    assert copy.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        view[0, 0, 0] = 1
    # The writer's next frame lands in the same slot: it shows through the view, not the copy.
    writer.put(np.full((10, 10, 3), 4, np.uint8))
    assert (int(view[0, 0, 0]), int(copy[0, 0, 0])) == (4, 0)
    del view, copy
    reader.close()


def test_overwritten_frame_is_detected_after_the_writer_laps_the_ring(
    make_ring: RingFactory,
) -> None:
    ring = make_ring(3, 64)
    slots = [ring.put(np.full(8, i, np.uint8)) for i in range(4)]
    assert [s.slot for s in slots] == [0, 1, 2, 0]
    assert [s.generation for s in slots] == [1, 2, 3, 4]
    with pytest.raises(FrameOverwrittenError, match="generation 1, the slot is at generation 4"):
        ring.get(slots[0])
    assert not ring.is_current(slots[0])
    assert ring.is_current(slots[3])
    assert ring.get(slots[3])[0] == 3


def test_a_zero_copy_view_can_be_checked_after_use(make_ring: RingFactory) -> None:
    ring = make_ring(1, 64)
    first = ring.put(np.full(8, 1, np.uint8))
    view = ring.get(first)
    ring.put(np.full(8, 2, np.uint8))
    assert view[0] == 2  # the view followed the slot: only is_current tells
    assert not ring.is_current(first)


def test_a_slot_being_rewritten_reads_as_overwritten(make_ring: RingFactory) -> None:
    ring = make_ring(1, 64)
    first = ring.put(np.full(8, 1, np.uint8))
    reservation = ring.reserve((8,))  # started, not committed
    with pytest.raises(FrameOverwrittenError, match="being rewritten"):
        ring.get(first, copy=True)
    reservation.array[:] = 5
    assert ring.get(reservation.commit())[0] == 5


def test_an_abandoned_reservation_is_replaced_by_the_next(make_ring: RingFactory) -> None:
    ring = make_ring(2, 64)
    ring.reserve((8,))  # the fill failed; never committed
    slot = ring.put(np.full(8, 9, np.uint8))
    assert (slot.slot, slot.generation, int(ring.get(slot)[0])) == (1, 2, 9)


def test_frame_larger_than_a_slot_is_refused(make_ring: RingFactory) -> None:
    ring = make_ring(2, 100)
    with pytest.raises(FrameTooLargeError, match=r"is 300 B, a slot holds 100 B"):
        ring.put(np.zeros((10, 10, 3), np.uint8))


def _slot(ring: SharedMemoryRing, **changes: object) -> SharedMemorySlot:
    slot = ring.put(np.zeros(16, np.uint8))
    for name, value in changes.items():
        setattr(slot, name, value)
    return slot


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"slot": 7}, r"slot 7, expected 0\.\.1"),
        ({"offset": 5}, r"offset 5 for slot 0, expected 128"),
        ({"size": 15}, r"says 15 B, the slot holds a 16 B frame"),
        ({"size": 0}, r"size 0, expected 1\.\.64"),
        ({"size": 65}, r"size 65, expected 1\.\.64"),
        ({"generation": 0}, r"generation 0, expected >= 1"),
        ({"generation": 99}, r"generation 99, newer than anything written there \(1\)"),
        ({"segment": "heron-other-1-abc"}, r"this ring is 'heron-"),
    ],
)
def test_malformed_slot_references_are_refused_with_the_field(
    make_ring: RingFactory, changes: dict[str, object], message: str
) -> None:
    ring = make_ring(2, 64)
    with pytest.raises(BadFrameRefError, match=message):
        ring.get(_slot(ring, **changes))


def test_attaching_an_unknown_segment_names_it() -> None:
    with pytest.raises(SegmentNotFoundError, match=r"'heron-nothing-1-000000' does not exist"):
        SharedMemoryRing.attach("heron-nothing-1-000000")


def test_attaching_a_segment_that_is_not_a_ring_is_refused() -> None:
    segment = Segment.create(segment_name("notring"), 4096)
    try:
        with pytest.raises(BadFrameRefError, match="is not a Heron frame ring"):
            SharedMemoryRing.attach(segment.name)
    finally:
        segment.unlink()
        segment.close()


def test_readers_cannot_write_or_unlink(make_ring: RingFactory) -> None:
    ring = make_ring(1, 64)
    reader = SharedMemoryRing.attach(ring.name)
    with pytest.raises(PermissionError, match="read-only"):
        reader.put(np.zeros(4, np.uint8))
    with pytest.raises(PermissionError, match="only its creator unlinks it"):
        reader.unlink()
    reader.close()
    assert ring.get(ring.put(np.ones(4, np.uint8)))[0] == 1  # the writer is unaffected


def test_unlink_removes_the_name_and_is_idempotent() -> None:
    ring = SharedMemoryRing.create(segment_name("gone"), 1, 8)
    with SharedMemoryRing.attach(ring.name) as reader:
        assert reader.slots == 1
    ring.unlink()
    ring.unlink()
    ring.close()
    ring.close()
    with pytest.raises(SegmentNotFoundError):
        SharedMemoryRing.attach(ring.name)


def test_closing_under_a_live_view_keeps_the_memory_mapped(make_ring: RingFactory) -> None:
    ring = make_ring(1, 64)
    slot = ring.put(np.full(8, 7, np.uint8))
    reader = SharedMemoryRing.attach(ring.name)
    view = reader.get(slot)
    reader.close()  # must not unmap under `view` (that would crash the process)
    assert reader.closed
    assert int(view.sum()) == 56


@pytest.mark.parametrize(
    ("stream", "pid", "expected"),
    [
        ("cam-1", 42, "heron-cam-1-42-abcdef"),
        ("rtsp://host/x y", 7, "heron-rtsp_host_x_y-7-abcdef"),
        ("a" * 50, 123456, "heron-aaaaaaaaaaa-123456-abcdef"),
        ("///", 1, "heron-stream-1-abcdef"),
    ],
)
def test_segment_names_are_safe_and_short(stream: str, pid: int, expected: str) -> None:
    name = segment_name(stream, pid, "abcdef")
    assert name == expected
    assert len(name) <= MAX_NAME
    assert check_segment_name(name) == name


@pytest.mark.parametrize("bad", ["", "../etc", "/heron", "a b", "x" * 40, "-lead"])
def test_unsafe_segment_names_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="segment name"):
        check_segment_name(bad)


@pytest.mark.parametrize(("slots", "slot_bytes"), [(0, 10), (1, 0), (-1, 5)])
def test_ring_sizes_must_be_positive(slots: int, slot_bytes: int) -> None:
    with pytest.raises(ValueError, match="expected slots >= 1 and slot_bytes >= 1"):
        SharedMemoryRing.create(segment_name("bad"), slots, slot_bytes)
