"""Where frame pixels live between services: a same-host shared-memory ring, or inline JPEG.

See docs/framestore.md. Producers use `FrameStore` (or a `SharedMemoryRing` directly),
consumers `FrameReader`; `Letterbox` (read from a FrameRef with `Letterbox.from_proto`) maps
boxes between a source frame and the pixels stored for it.
"""

from heron.core.framestore.errors import (
    BadFrameRefError,
    FrameOverwrittenError,
    FrameStoreError,
    FrameTooLargeError,
    JpegError,
    SegmentNotFoundError,
    UnsupportedLocationError,
)
from heron.core.framestore.jpeg import decode_jpeg, encode_jpeg
from heron.core.framestore.letterbox import Letterbox, stored_size
from heron.core.framestore.names import segment_name
from heron.core.framestore.ring import Reservation, SharedMemoryRing
from heron.core.framestore.store import LOCATIONS, FrameReader, FrameStore, Location

__all__ = [
    "LOCATIONS",
    "BadFrameRefError",
    "FrameOverwrittenError",
    "FrameReader",
    "FrameStore",
    "FrameStoreError",
    "FrameTooLargeError",
    "JpegError",
    "Letterbox",
    "Location",
    "Reservation",
    "SegmentNotFoundError",
    "SharedMemoryRing",
    "UnsupportedLocationError",
    "decode_jpeg",
    "encode_jpeg",
    "segment_name",
    "stored_size",
]
