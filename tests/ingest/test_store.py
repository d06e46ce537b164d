"""Where a stream's pixels go: its ring (grown when frames get bigger) or inline JPEG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from heron.core.framestore import FrameReader, SegmentNotFoundError
from heron.core.plan.settings.ingest import FrameLocation
from heron.ingest.store import JpegPixelStore, ShmPixelStore, pixel_store
from heron.v1.frame_pb2 import FrameRef, PixelFormat


def _image(height: int, width: int, value: int) -> np.ndarray:
    return np.full((height, width, 3), value, np.uint8)


def test_ring_is_made_at_the_first_frame_and_replaced_when_frames_grow() -> None:
    store = ShmPixelStore("cam-1", slots=4)
    reader = FrameReader()
    try:
        small = store.put(_image(24, 32, 10), FrameRef(stream_id="cam-1"))
        first = small.shm.segment
        assert (small.width, small.height, small.pixel_format) == (
            32,
            24,
            PixelFormat.PIXEL_FORMAT_BGR24,
        )
        same = store.put(_image(12, 16, 20), FrameRef(stream_id="cam-1"))  # fits: same ring
        assert same.shm.segment == first
        big = store.put(_image(48, 64, 30), FrameRef(stream_id="cam-1"))
        assert big.shm.segment != first
        # The ring before is kept, so refs already published still resolve.
        assert reader.read(small).mean() == 10
        assert reader.read(big).mean() == 30
    finally:
        reader.close()
        store.close()
    for segment in (first, big.shm.segment):
        assert not Path(f"/dev/shm/{segment}").exists()
    with pytest.raises(SegmentNotFoundError):
        FrameReader().read(big)


def test_jpeg_store_and_factory() -> None:
    assert isinstance(pixel_store(FrameLocation.JPEG, "s", slots=2, quality=80), JpegPixelStore)
    assert isinstance(pixel_store(FrameLocation.SHM, "s", slots=2, quality=80), ShmPixelStore)
    ref = JpegPixelStore(95).put(_image(16, 16, 128), FrameRef(stream_id="s", frame_number=3))
    assert ref.WhichOneof("location") == "jpeg"
    assert ref.frame_number == 3
    assert abs(FrameReader().read(ref).mean() - 128) < 2
