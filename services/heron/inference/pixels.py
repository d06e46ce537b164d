"""A frame reference's pixels as BGR uint8, or a BadFrameError saying why not.

heron.core.framestore's `FrameReader` resolves every location (shared-memory ring, inline JPEG;
CUDA IPC is refused without a GPU) and keeps rings attached between calls.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from heron.core.framestore import FrameOverwrittenError, FrameReader, FrameStoreError
from heron.inference.errors import BadFrameError
from heron.v1.frame_pb2 import FrameRef

Image = NDArray[np.uint8]


def describe(ref: FrameRef) -> str:
    return f"stream {ref.stream_id!r} frame {ref.frame_number}"


class PixelReader:
    def __init__(self) -> None:
        self._reader = FrameReader()

    def read(self, ref: FrameRef, size: tuple[int, int] | None = None) -> Image:
        """Pixels of `ref`; `size` (width, height) when they differ from the ref's own size
        (frames of a FrameBatch are muxer-sized, their width/height stay the source's)."""
        try:
            image = self._reader.read(ref, size=size)
        except FrameOverwrittenError as e:
            raise BadFrameError("frame_overwritten", f"{describe(ref)}: {e}") from e
        except (FrameStoreError, ValueError) as e:
            raise BadFrameError("bad_frame", f"{describe(ref)}: {e}") from e
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise BadFrameError(
                "bad_frame",
                f"{describe(ref)}: expected BGR uint8 pixels (H, W, 3), got {image.dtype} "
                f"{image.shape}",
            )
        return image

    def close(self) -> None:
        self._reader.close()
