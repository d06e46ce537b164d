"""Between FrameMetadata objects and tracker inputs/outputs (from_/to_ converters).

The box formats are the core's (`Detections.from_proto`, `bounding_boxes`); what is the
tracker's own here is which frames carry detections and what a tracked object keeps of its
detector object."""

from __future__ import annotations

from heron.core.detections import Detections, DetectionsError, bounding_boxes
from heron.tracker.base import Tracked
from heron.v1.detection_pb2 import DetectedObject, FrameMetadata


class BadMetadataError(ValueError):
    """A FrameMetadata the tracker cannot use; the message says what and where."""


def from_metadata(meta: FrameMetadata) -> Detections | None:
    """The detections of a frame; None for a frame the detector skipped (nvinfer interval)."""
    if not meta.frame.stream_id:
        raise BadMetadataError("frame.stream_id: expected the source's stream id, got ''")
    if not meta.inferred and not meta.objects:
        return None
    try:
        return Detections.from_proto(meta)
    except DetectionsError as e:
        raise BadMetadataError(str(e)) from e


def to_object(template: DetectedObject, tracked: Tracked) -> DetectedObject:
    """`template` (the detector's object) with the tracker's box, id and confidence."""
    out = DetectedObject()
    out.CopyFrom(template)
    (box,) = bounding_boxes(tracked.box)
    out.bbox.CopyFrom(box)
    out.tracker_id = tracked.track_id
    out.tracker_confidence = float(tracked.confidence)
    return out
