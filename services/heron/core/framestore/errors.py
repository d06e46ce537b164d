"""What the frame store raises. Callers tell "frame gone" (skip it) from bad input by type."""

from __future__ import annotations


class FrameStoreError(Exception):
    """Base of every error the frame store raises itself."""


class FrameOverwrittenError(FrameStoreError):
    """The ring slot was rewritten since the reference was made: the frame is gone.

    Normal under load (latest-frame-wins): count it and move on.
    """

    def __init__(self, segment: str, slot: int, expected: int, found: int) -> None:
        state = "being rewritten" if found == 0 else f"at generation {found}"
        super().__init__(
            f"frame in segment {segment!r} slot {slot} was overwritten: the reference has "
            f"generation {expected}, the slot is {state}"
        )
        self.segment = segment
        self.slot = slot
        self.expected = expected
        self.found = found


class BadFrameRefError(FrameStoreError, ValueError):
    """A FrameRef (or its SharedMemorySlot) that cannot describe a stored frame."""


class SegmentNotFoundError(FrameStoreError, FileNotFoundError):
    """No shared-memory segment of that name exists (its writer may have exited)."""


class FrameTooLargeError(FrameStoreError, ValueError):
    """An image does not fit in one slot of the ring."""


class UnsupportedLocationError(FrameStoreError):
    """A frame location this process cannot resolve (CUDA IPC without a GPU)."""


class JpegError(FrameStoreError, ValueError):
    """Bytes that do not decode as a JPEG image, or an image that cannot be encoded."""
