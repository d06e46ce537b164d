"""One JSON message per detected object, in the spirit of DeepStream's nvmsgconv schema.

nvmsgconv's full schema (payload type 0) sends, per object, a message with `messageid`,
`@timestamp`, the sensor, and an `object` with its id and `bbox` {topleftx, toplefty,
bottomrightx, bottomrighty}. Heron keeps those names and adds what a Heron consumer needs and
nvmsgconv spreads over its `place`/`analyticsModule` config: the stream id and source id, the
frame number, label, class id and confidences. Example:

    {"messageid": "5f1c...", "mdsversion": "1.0", "@timestamp": "2026-11-27T22:12:18.478Z",
     "sensorId": "cam-1", "sensor": {"id": "cam-1", "type": "Camera", "sourceId": 0},
     "frameNumber": 42, "model": {"name": "facemask", "version": "1"},
     "object": {"id": "7", "label": "Mask", "classId": 0, "confidence": 0.91,
                "trackerConfidence": 0.8,
                "bbox": {"topleftx": 100, "toplefty": 50, "bottomrightx": 180,
                         "bottomrighty": 150}}}

`object.id` is the tracker id, "-1" when no tracker assigned one (nvmsgconv's convention for
untracked objects). Box corners are integer pixels of the source frame.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from heron.v1.detection_pb2 import DetectedObject, FrameMetadata

MDS_VERSION = "1.0"
UNTRACKED = "-1"


def timestamp(meta: FrameMetadata, now: datetime | None = None) -> str:
    """ISO 8601 UTC with milliseconds and Z, as nvmsgconv writes it: the capture time when the
    frame has one, else now."""
    ct = meta.frame.capture_time
    if ct.seconds or ct.nanos:
        when = datetime.fromtimestamp(ct.seconds + ct.nanos / 1e9, UTC)
    else:
        when = now or datetime.now(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def object_message(meta: FrameMetadata, obj: DetectedObject, stamp: str) -> dict[str, object]:
    b = obj.bbox
    ref = meta.frame
    return {
        "messageid": str(uuid.uuid4()),
        "mdsversion": MDS_VERSION,
        "@timestamp": stamp,
        "sensorId": ref.stream_id,
        "sensor": {"id": ref.stream_id, "type": "Camera", "sourceId": ref.source_id},
        "frameNumber": ref.frame_number,
        "model": {"name": meta.model_name, "version": meta.model_version},
        "object": {
            "id": str(obj.tracker_id) if obj.tracker_id else UNTRACKED,
            "label": obj.label,
            "classId": obj.class_id,
            "confidence": round(float(obj.confidence), 4),
            "trackerConfidence": round(float(obj.tracker_confidence), 4),
            "bbox": {
                "topleftx": round(b.left),
                "toplefty": round(b.top),
                "bottomrightx": round(b.left + b.width),
                "bottomrighty": round(b.top + b.height),
            },
        },
    }


def frame_payloads(meta: FrameMetadata) -> list[bytes]:
    """One UTF-8 JSON payload per object of the frame."""
    stamp = timestamp(meta)
    return [
        json.dumps(object_message(meta, obj, stamp), separators=(",", ":")).encode()
        for obj in meta.objects
    ]
