"""Pixels for the trackers that use them, scaled to tracker-width x tracker-height.

FrameMetadata.frame is the source FrameRef: its width/height are the source's, while its
pixels are the source's own (frame-stream input) or the muxer's output size (streammux batch
input, letterboxed when enable-padding=1, image at the top-left). The ref says which: its
stored size and placement (`Letterbox.from_proto`), so one read does it. A frame that is
gone (its ring slot rewritten, its segment unlinked) yields None and is counted by reason:
the trackers then match by overlap only for that frame.
"""

from __future__ import annotations

import logging

import numpy as np

from heron.core.framestore import (
    FrameOverwrittenError,
    FrameReader,
    FrameStoreError,
    Letterbox,
    SegmentNotFoundError,
)
from heron.tracker.base import Frame, Image
from heron.v1.frame_pb2 import FrameRef

log = logging.getLogger(__name__)


class FramePixels:
    def __init__(self, size: tuple[int, int]) -> None:
        self.size = size  # tracker-width, tracker-height
        self._reader = FrameReader()

    def read(self, ref: FrameRef) -> tuple[Frame | None, str]:
        """The frame, or None with why: "" (read), overwritten, missing, unreadable."""
        try:
            image, box = self._read(ref)
        except FrameOverwrittenError:
            return None, "overwritten"
        except SegmentNotFoundError:
            return None, "missing"
        except (FrameStoreError, ValueError) as e:
            log.warning("pixels of %s#%d unreadable: %s", ref.stream_id, ref.frame_number, e)
            return None, "unreadable"
        return self._scaled(image, box), ""

    def _read(self, ref: FrameRef) -> tuple[Image, Letterbox]:
        box = Letterbox.from_proto(ref)  # before the read: a bad placement reads nothing
        return self._reader.read(ref), box

    def _scaled(self, image: Image, box: Letterbox) -> Frame:
        import cv2

        # A Frame maps by scale alone: start the image where the picture starts (streammux
        # puts it at the top-left, so this cuts nothing there).
        image = image[box.offset_y :, box.offset_x :]
        h, w = image.shape[:2]
        tw, th = self.size
        if (w, h) != (tw, th):
            image = np.asarray(cv2.resize(image, (tw, th), interpolation=cv2.INTER_AREA), np.uint8)
        return Frame(image, box.scale_x * tw / w, box.scale_y * th / h)

    def close(self) -> None:
        self._reader.close()
