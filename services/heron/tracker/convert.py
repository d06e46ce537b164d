"""Between FrameMetadata objects and tracker inputs/outputs (from_/to_ converters)."""

from __future__ import annotations

import math

import numpy as np

from heron.tracker.base import Detections, Tracked
from heron.v1.detection_pb2 import DetectedObject, FrameMetadata


class BadMetadataError(ValueError):
    """A FrameMetadata the tracker cannot use; the message says what and where."""


def from_metadata(meta: FrameMetadata) -> Detections | None:
    """The detections of a frame; None for a frame the detector skipped (nvinfer interval)."""
    if not meta.frame.stream_id:
        raise BadMetadataError("frame.stream_id: expected the source's stream id, got ''")
    if not meta.inferred and not meta.objects:
        return None
    boxes = np.zeros((len(meta.objects), 4))
    for i, o in enumerate(meta.objects):
        b = o.bbox
        values = (b.left, b.top, b.width, b.height)
        if not all(math.isfinite(v) for v in values) or b.width < 0 or b.height < 0:
            raise BadMetadataError(
                f"objects[{i}].bbox: expected finite left/top and width, height >= 0, got "
                f"left={b.left} top={b.top} width={b.width} height={b.height}"
            )
        boxes[i] = (b.left, b.top, b.left + b.width, b.top + b.height)
    scores = np.array([o.confidence for o in meta.objects], dtype=np.float64)
    classes = np.array([o.class_id for o in meta.objects], dtype=np.int64)
    return Detections(boxes, scores, classes)


def to_object(template: DetectedObject, tracked: Tracked) -> DetectedObject:
    """`template` (the detector's object) with the tracker's box, id and confidence."""
    out = DetectedObject()
    out.CopyFrom(template)
    x1, y1, x2, y2 = (float(v) for v in tracked.box)
    out.bbox.left, out.bbox.top = x1, y1
    out.bbox.width, out.bbox.height = x2 - x1, y2 - y1
    out.tracker_id = tracked.track_id
    out.tracker_confidence = float(tracked.confidence)
    return out
