"""The Detector API's images (`heron.v1.Image`) → BGR uint8 pixels, or an InvalidArgumentError
naming the field.

Two steps, so a request is refused before any of it is decoded or inferred: `check_image`
reads only what the image says of itself (the raw fields, or a JPEG's or PNG's header) and
refuses an unknown format, a data length that does not match width × height × channels, or
more pixels than the limit (a few kB of PNG can claim 50,000 × 50,000 pixels: the header is
read before OpenCV allocates them); `to_bgr` then decodes. Only JPEG and PNG are decoded:
OpenCV would take BMP, TIFF, WebP and more, but each decoder is more code facing the network.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from heron.core.grpc.errors import InvalidArgumentError
from heron.v1.detector_pb2 import Image, RawImage
from heron.v1.frame_pb2 import PixelFormat

Pixels = NDArray[np.uint8]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SOI = b"\xff\xd8"
# JPEG start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) share the range.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers with no length field after them.
_STANDALONE = frozenset({0x01, *range(0xD0, 0xDA)})

RAW_CHANNELS = {
    PixelFormat.PIXEL_FORMAT_BGR24: 3,
    PixelFormat.PIXEL_FORMAT_RGB24: 3,
    PixelFormat.PIXEL_FORMAT_GRAY8: 1,
}


def check_image(image: Image, field: str, max_pixels: int) -> None:
    """Refuse what cannot be decoded or is too large; `field` names the image (`images[3]`)."""
    kind = image.WhichOneof("data")
    if kind == "raw":
        _check_raw(image.raw, f"{field}.raw", max_pixels)
    elif kind == "encoded":
        _check_encoded(image.encoded, f"{field}.encoded", max_pixels)
    else:
        raise InvalidArgumentError(
            field, "expected `encoded` (JPEG or PNG bytes) or `raw` pixels, got neither"
        )


def to_bgr(image: Image, field: str) -> Pixels:
    """The pixels of an image `check_image` accepted, as BGR uint8 (H, W, 3)."""
    import cv2

    if image.WhichOneof("data") == "raw":
        raw = image.raw
        flat = np.frombuffer(raw.data, np.uint8)
        if raw.format == PixelFormat.PIXEL_FORMAT_GRAY8:
            gray = flat.reshape(raw.height, raw.width)
            return np.asarray(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), np.uint8)
        pixels = flat.reshape(raw.height, raw.width, 3)
        if raw.format == PixelFormat.PIXEL_FORMAT_RGB24:
            return np.asarray(cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR), np.uint8)
        return pixels
    # IMREAD_COLOR: 3-channel 8-bit BGR whatever the file holds (gray, alpha, 16-bit), turned
    # upright by its EXIF orientation, as image viewers show it: boxes are in those pixels.
    decoded = cv2.imdecode(np.frombuffer(image.encoded, np.uint8), cv2.IMREAD_COLOR)
    if decoded is None:
        raise InvalidArgumentError(
            f"{field}.encoded",
            f"cannot decode these {len(image.encoded)} bytes as {_kind(image.encoded)} "
            "(truncated or corrupt)",
        )
    return np.asarray(decoded, np.uint8)


def _check_raw(raw: RawImage, field: str, max_pixels: int) -> None:
    channels = RAW_CHANNELS.get(raw.format)
    if channels is None:
        raise InvalidArgumentError(
            f"{field}.format",
            f"expected PIXEL_FORMAT_BGR24, PIXEL_FORMAT_RGB24 or PIXEL_FORMAT_GRAY8, got "
            f"{_format_name(raw.format)}",
        )
    for name, value in (("width", raw.width), ("height", raw.height)):
        if value < 1:
            raise InvalidArgumentError(f"{field}.{name}", f"expected >= 1, got {value}")
    _check_pixels(raw.width, raw.height, field, max_pixels)
    expected = raw.width * raw.height * channels
    if len(raw.data) != expected:
        raise InvalidArgumentError(
            f"{field}.data",
            f"expected {expected} bytes ({raw.width} x {raw.height} x {channels} channel(s), "
            f"packed rows), got {len(raw.data)}",
        )


def _check_encoded(data: bytes, field: str, max_pixels: int) -> None:
    if not data:
        raise InvalidArgumentError(field, "expected JPEG or PNG bytes, got none")
    if data.startswith(PNG_SIGNATURE):
        size = _png_size(data)
    elif data.startswith(JPEG_SOI):
        size = _jpeg_size(data)
    else:
        raise InvalidArgumentError(
            field, f"expected JPEG or PNG bytes, got bytes starting {data[:8].hex(' ')}"
        )
    if size is None:
        raise InvalidArgumentError(
            field, f"cannot read the size from this {_kind(data)} header (truncated or corrupt)"
        )
    _check_pixels(*size, field, max_pixels)


def _check_pixels(width: int, height: int, field: str, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise InvalidArgumentError(
            field,
            f"{width} x {height} is {width * height} pixels, more than the "
            f"{max_pixels} an image may have (detect_max_image_pixels)",
        )


def _png_size(data: bytes) -> tuple[int, int] | None:
    """IHDR is the first chunk: length, b"IHDR", width, height (big-endian)."""
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    width, height = int.from_bytes(data[16:20]), int.from_bytes(data[20:24])
    return (width, height) if width and height else None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """The size in the first start-of-frame segment, walking the segments from SOI."""
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte before a marker
            at += 1
            continue
        if marker in _STANDALONE:
            at += 2
            continue
        if marker in _SOF:
            if at + 9 > len(data):
                return None
            height = int.from_bytes(data[at + 5 : at + 7])
            width = int.from_bytes(data[at + 7 : at + 9])
            return (width, height) if width and height else None
        at += 2 + int.from_bytes(data[at + 2 : at + 4])
    return None


def _kind(data: bytes) -> str:
    return "PNG" if data.startswith(PNG_SIGNATURE) else "JPEG"


def _format_name(value: PixelFormat.ValueType) -> str:
    try:
        return PixelFormat.Name(value)
    except ValueError:
        return f"unknown value {value}"
