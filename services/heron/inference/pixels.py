"""A frame reference's pixels as BGR uint8, or a BadFrameError saying why not.

heron.core.framestore's `FrameReader` resolves every location (shared-memory ring, inline JPEG;
CUDA IPC is refused without a GPU) and keeps rings attached between calls. The ref also says
where the source frame sits in those pixels (`placement`), so boxes can go back to the source.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from heron.core.framestore import FrameOverwrittenError, FrameReader, FrameStoreError, Letterbox
from heron.inference.errors import BadFrameError
from heron.inference.geometry import Placement
from heron.v1.frame_pb2 import FrameRef

Image = NDArray[np.uint8]


def describe(ref: FrameRef) -> str:
    return f"stream {ref.stream_id!r} frame {ref.frame_number}"


class PixelReader:
    def __init__(self) -> None:
        self._reader = FrameReader()

    def read(self, ref: FrameRef) -> Image:
        """Pixels of `ref`, of its stored size (muxer-sized in a FrameBatch)."""
        try:
            image = self._reader.read(ref)
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

    def placement(self, ref: FrameRef) -> Placement:
        """Where the source frame (ref width x height, the boxes' coordinates) sits in the
        pixels `read` gives: the muxer's scaling as the ref carries it, or the identity."""
        try:
            box = Letterbox.from_proto(ref)
        except ValueError as e:
            raise BadFrameError("bad_frame", f"{describe(ref)}: {e}") from e
        size = (box.content_w, box.content_h)
        return Placement((box.src_w, box.src_h), (box.dst_w, box.dst_h), size,
                         box.offset_x, box.offset_y)  # fmt: skip

    def close(self) -> None:
        self._reader.close()
