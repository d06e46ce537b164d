"""The tracker reads a frame's pixels once, at the size its FrameRef says, and maps boxes with
the placement the ref carries: no [streammux] settings, no second try at another size."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from heron.core.framestore import FrameReader, FrameStore, Letterbox, SharedMemoryRing, segment_name
from heron.tracker.pixels import FramePixels
from heron.v1.frame_pb2 import FrameRef


@pytest.fixture
def store() -> Iterator[FrameStore]:
    ring = SharedMemoryRing.create(segment_name("trk-px"), 4, 320 * 240 * 3)
    try:
        yield FrameStore(ring)
    finally:
        ring.unlink()
        ring.close()


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[FrameRef]:
    """Every FrameReader.read call, by the ref it was given."""
    calls: list[FrameRef] = []
    real = FrameReader.read

    def spy(self: FrameReader, ref: FrameRef, **kwargs: Any) -> Any:
        calls.append(ref)
        return real(self, ref, **kwargs)

    monkeypatch.setattr(FrameReader, "read", spy)
    return calls


def test_a_letterboxed_batch_frame_is_read_once_and_scaled_by_its_placement(
    store: FrameStore, reads: list[FrameRef]
) -> None:
    """A 640x360 source letterboxed into 320x240 (picture 320x180, bars below)."""
    box = Letterbox.fit(640, 360, 320, 240, padding=True)
    image = np.zeros((240, 320, 3), np.uint8)
    image[:180] = 200
    ref = store.store(image, FrameRef(stream_id="cam", frame_number=1), placement=box)
    pixels = FramePixels((160, 120))
    try:
        frame, why = pixels.read(ref)
    finally:
        pixels.close()
    assert why == "" and frame is not None and len(reads) == 1
    assert frame.image.shape == (120, 160, 3)
    assert (frame.sx, frame.sy) == (0.25, 0.25)  # source 640 -> stored 320 -> tracker 160
    # A source box lands on the tracker image where its pixels are.
    np.testing.assert_allclose(frame.to_image(np.array([[0.0, 0.0, 640.0, 360.0]])),
                               [[0, 0, 160, 90]])  # fmt: skip
    assert (frame.image[:89] == 200).all() and (frame.image[91:] == 0).all()


def test_an_ingest_frame_is_read_once_at_its_own_size(
    store: FrameStore, reads: list[FrameRef]
) -> None:
    ref = store.store(np.full((240, 320, 3), 9, np.uint8), FrameRef(stream_id="cam"))
    pixels = FramePixels((320, 240))
    try:
        frame, why = pixels.read(ref)
    finally:
        pixels.close()
    assert why == "" and frame is not None and len(reads) == 1
    assert (frame.sx, frame.sy) == (1.0, 1.0)


def test_a_ref_that_misstates_its_size_is_unreadable_after_one_try(
    store: FrameStore, reads: list[FrameRef]
) -> None:
    """The old tracker retried at the [streammux] size; now a wrong size is simply wrong."""
    box = Letterbox.fit(640, 480, 320, 240, padding=False)
    ref = store.store(np.zeros((240, 320, 3), np.uint8), FrameRef(stream_id="cam"), placement=box)
    ref.stored_width, ref.stored_height = 160, 120
    ref.placement.content_width, ref.placement.content_height = 160, 120
    pixels = FramePixels((160, 120))
    try:
        assert pixels.read(ref) == (None, "unreadable")
    finally:
        pixels.close()
    assert len(reads) == 1
