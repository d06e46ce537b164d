"""FrameStore and FrameReader: every location, every pixel format, malformed FrameRefs."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest
from heron.core.framestore import (
    BadFrameRefError,
    FrameOverwrittenError,
    FrameReader,
    FrameStore,
    JpegError,
    Letterbox,
    Location,
    SegmentNotFoundError,
    UnsupportedLocationError,
)
from heron.v1.frame_pb2 import CudaIpcHandle, FrameBatch, FrameRef, PixelFormat

from tests.core.framestore.conftest import RingFactory


@pytest.fixture
def reader() -> Iterator[FrameReader]:
    r = FrameReader()
    yield r
    r.close()


def gradient(width: int = 96, height: int = 64) -> np.ndarray:
    x = np.linspace(0, 255, width, dtype=np.float32)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    return np.dstack([np.broadcast_to(x, (height, width)), np.broadcast_to(y, (height, width)),
                      np.full((height, width), 128.0)]).astype(np.uint8)  # fmt: skip


def ref() -> FrameRef:
    return FrameRef(stream_id="cam-1", frame_number=12, pts=3600, source_id=2, time_base_den=90000)


def test_shm_store_fills_the_ref_and_reads_back_exactly(
    make_ring: RingFactory, reader: FrameReader
) -> None:
    image = gradient()
    stored = FrameStore(make_ring(2, image.nbytes)).store(image, ref())
    assert stored.WhichOneof("location") == "shm"
    assert (stored.width, stored.height, stored.pixel_format) == (
        96,
        64,
        PixelFormat.PIXEL_FORMAT_BGR24,
    )
    # A frame stored as it is: stored size = source size, identity placement.
    assert (stored.stored_width, stored.stored_height) == (96, 64)
    assert Letterbox.from_proto(stored) == Letterbox.identity(96, 64)
    assert stored.HasField("placement")
    # What the producer set survives.
    assert (stored.stream_id, stored.frame_number, stored.pts, stored.source_id) == (
        "cam-1",
        12,
        3600,
        2,
    )
    np.testing.assert_array_equal(reader.read(stored), image)
    view = reader.read(stored, copy=False)
    assert not view.flags.writeable
    np.testing.assert_array_equal(view, image)


def test_jpeg_store_round_trips_within_codec_error(reader: FrameReader) -> None:
    image = gradient()
    stored = FrameStore(jpeg_quality=95).store(image, ref(), "jpeg")
    assert stored.WhichOneof("location") == "jpeg"
    assert stored.pixel_format == PixelFormat.PIXEL_FORMAT_JPEG
    assert stored.jpeg[:2] == b"\xff\xd8"
    back = reader.read(stored)
    assert back.shape == image.shape
    assert np.abs(back.astype(int) - image.astype(int)).mean() < 3


@pytest.mark.parametrize(
    ("pixel_format", "make"),
    [
        (PixelFormat.PIXEL_FORMAT_RGB24, lambda bgr: bgr[:, :, ::-1].copy()),
        (PixelFormat.PIXEL_FORMAT_GRAY8, lambda bgr: bgr[:, :, 1].copy()),
    ],
)
def test_raw_formats_in_shm_come_back_as_bgr(
    make_ring: RingFactory,
    reader: FrameReader,
    pixel_format: PixelFormat.ValueType,
    make: Callable[[np.ndarray], np.ndarray],
) -> None:
    image = gradient()
    raw = make(image)
    ring = make_ring(1, image.nbytes)
    stored = ref()
    stored.width, stored.height, stored.pixel_format = 96, 64, pixel_format
    stored.shm.CopyFrom(ring.put(raw))
    got = reader.read(stored)
    assert got.shape == (64, 96, 3)
    if pixel_format == PixelFormat.PIXEL_FORMAT_RGB24:
        np.testing.assert_array_equal(got, image)
    else:
        np.testing.assert_array_equal(got[:, :, 0], image[:, :, 1])


def test_i420_in_shm_comes_back_as_bgr(make_ring: RingFactory, reader: FrameReader) -> None:
    import cv2

    image = np.full((64, 96, 3), (30, 140, 200), np.uint8)
    i420 = cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420)
    ring = make_ring(1, image.nbytes)
    stored = ref()
    stored.width, stored.height, stored.pixel_format = 96, 64, PixelFormat.PIXEL_FORMAT_I420
    stored.shm.CopyFrom(ring.put(i420))
    assert np.abs(reader.read(stored).astype(int) - image.astype(int)).max() <= 3


@pytest.mark.parametrize("location", ["shm", "jpeg"])
def test_a_scaled_frame_says_its_stored_size_and_placement(
    make_ring: RingFactory, reader: FrameReader, location: Location
) -> None:
    """As streammux stores a 1920x1080 frame letterboxed into 96x64: the ref keeps the
    source's size, says the stored size and placement, and reads with nothing else."""
    box = Letterbox.fit(1920, 1080, 96, 64, padding=True)
    frame = FrameStore(make_ring(2, 64 * 96 * 3)).store(gradient(), ref(), location, placement=box)
    assert (frame.width, frame.height, frame.stored_width, frame.stored_height) == (
        1920,
        1080,
        96,
        64,
    )
    assert (frame.placement.content_width, frame.placement.content_height) == (96, 54)
    assert Letterbox.from_proto(frame) == box
    batch = FrameBatch(batch_id=1, width=96, height=64, frames=[frame])
    (got,) = reader.read_batch(batch)
    assert got.shape == (64, 96, 3)
    assert np.abs(reader.read(frame).astype(int) - gradient().astype(int)).mean() < 3
    with pytest.raises(ValueError, match=r"placement is into 96x64, the image is 48x32"):
        FrameStore(jpeg_quality=90).store(gradient(48, 32), ref(), "jpeg", placement=box)


def test_an_overwritten_frame_raises(make_ring: RingFactory, reader: FrameReader) -> None:
    store = FrameStore(make_ring(1, 96 * 64 * 3))
    first = store.store(gradient(), ref())
    assert reader.is_current(first)
    store.store(gradient(), ref())
    assert not reader.is_current(first)
    with pytest.raises(FrameOverwrittenError):
        reader.read(first)


def _changed(**fields: object) -> Callable[[FrameRef], FrameRef]:
    def change(good: FrameRef) -> FrameRef:
        r = FrameRef()
        r.CopyFrom(good)
        for name, value in fields.items():
            target = r.shm if name.startswith("shm_") else r
            setattr(target, name.removeprefix("shm_"), value)
        return r

    return change


def _no_location(good: FrameRef) -> FrameRef:
    return ref()


def _cuda(good: FrameRef) -> FrameRef:
    r = ref()
    r.cuda_ipc.CopyFrom(CudaIpcHandle(device_id=1, handle=b"\0" * 64, size=10))
    return r


def _jpeg(data: bytes) -> Callable[[FrameRef], FrameRef]:
    def make(good: FrameRef) -> FrameRef:
        r = ref()
        r.jpeg = data
        return r

    return make


@pytest.mark.parametrize(
    ("make_bad", "error", "message"),
    [
        (_no_location, BadFrameRefError, "no location"),
        (_cuda, UnsupportedLocationError, r"cuda_ipc, device 1.*without CUDA"),
        (_changed(shm_size=100), BadFrameRefError, r"says 100 B, the slot holds"),
        (_changed(stored_width=95), BadFrameRefError, r"BGR24 95x64 means an array"),
        (_changed(pixel_format=PixelFormat.PIXEL_FORMAT_JPEG), BadFrameRefError,
         r"expected BGR24, RGB24, GRAY8, I420 or NV12 for raw pixels, got PIXEL_FORMAT_JPEG"),
        (_changed(shm_segment="heron-gone-1-aaaaaa"), SegmentNotFoundError,
         r"'heron-gone-1-aaaaaa' does not exist"),
        (_changed(shm_segment="../../etc/passwd"), BadFrameRefError, r"segment name: expected"),
        (_changed(shm_segment=""), BadFrameRefError, r"expected a segment name"),
        (_changed(shm_slot=9), BadFrameRefError, r"slot 9, expected 0\.\.1"),
        (_jpeg(b"not a jpeg at all"), JpegError, r"expected JPEG data starting with ffd8"),
        (_jpeg(b"\xff\xd8\xff\xe0" + b"\0" * 20), JpegError, r"do not decode"),
    ],
    ids=["no-location", "cuda-ipc", "wrong-size", "wrong-width", "wrong-format",
         "unknown-segment", "unsafe-segment", "empty-segment", "bad-slot", "jpeg-garbage",
         "jpeg-truncated"],
)  # fmt: skip
def test_malformed_frame_refs_are_refused_with_a_clear_error(
    make_ring: RingFactory,
    reader: FrameReader,
    make_bad: Callable[[FrameRef], FrameRef],
    error: type[Exception],
    message: str,
) -> None:
    good = FrameStore(make_ring(2, 96 * 64 * 3)).store(gradient(), ref())
    with pytest.raises(error, match=message):
        reader.read(make_bad(good))


def test_store_refuses_what_it_cannot_store(make_ring: RingFactory) -> None:
    with pytest.raises(ValueError, match="needs a ring"):
        FrameStore().store(gradient(), ref(), "shm")
    with pytest.raises(ValueError, match=r"expected location in \('shm', 'jpeg'\)"):
        FrameStore().store(gradient(), ref(), "cuda")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"expected a BGR uint8 HxWx3 image, got float32"):
        FrameStore().store(np.zeros((4, 4, 3), np.float32), ref(), "jpeg")
    with pytest.raises(ValueError, match=r"jpeg_quality 1\.\.100"):
        FrameStore(jpeg_quality=0)


def test_reader_keeps_a_bounded_number_of_rings(make_ring: RingFactory) -> None:
    reader = FrameReader(max_segments=2)
    refs = [FrameStore(make_ring(1, 96 * 64 * 3)).store(gradient(), ref()) for _ in range(3)]
    for r in refs:
        reader.read(r)
    assert len(reader._rings) == 2
    reader.read(refs[0])  # closed as least recently used: attached again on demand
    reader.close()


def test_prune_closes_rings_whose_writers_unlinked_them(make_ring: RingFactory) -> None:
    reader = FrameReader()
    kept, gone = (FrameStore(make_ring(1, 96 * 64 * 3)) for _ in range(2))
    refs = [store.store(gradient(), ref()) for store in (kept, gone)]
    for r in refs:
        reader.read(r)
    assert gone.ring is not None
    gone.ring.unlink()
    assert reader.prune() == [refs[1].shm.segment]
    assert list(reader._rings) == [refs[0].shm.segment]
    with pytest.raises(SegmentNotFoundError):
        reader.read(refs[1])
    reader.close()
