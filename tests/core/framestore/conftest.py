"""Fixtures of the frame-store tests: rings that are always unlinked, whatever a test does."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from heron.core.framestore import SharedMemoryRing, segment_name

RingFactory = Callable[[int, int], SharedMemoryRing]


@pytest.fixture
def make_ring() -> Iterator[RingFactory]:
    made: list[SharedMemoryRing] = []

    def make(slots: int, slot_bytes: int) -> SharedMemoryRing:
        ring = SharedMemoryRing.create(segment_name(f"t{uuid.uuid4().hex[:6]}"), slots, slot_bytes)
        made.append(ring)
        return ring

    yield make
    for ring in made:
        ring.unlink()
        ring.close()
