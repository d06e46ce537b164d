"""A SubscribeRequest checked field by field, and the filter it asks for.

Filtering keeps every frame of the streams asked for, also one left with no object: a client
counts frames (and their positions) to know it missed none, and an empty frame says "seen,
nothing there" as a dashboard needs. Frames of other streams are not sent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from heron.control.positions import parse_position
from heron.core import streams
from heron.core.bus import Cursor
from heron.core.grpc import InvalidArgumentError
from heron.v1.control_pb2 import SubscribeRequest
from heron.v1.detection_pb2 import FrameMetadata


@dataclass(frozen=True)
class Query:
    stream_ids: frozenset[str]  # empty: every stream
    classes: frozenset[str]  # labels; empty: every class
    min_confidence: float
    after: Cursor | None  # continue right after it
    from_oldest: bool  # without `after`: from the oldest frame held, else from now

    def select(self, meta: FrameMetadata) -> FrameMetadata | None:
        """The frame as this subscriber gets it; None when its stream was not asked for."""
        if self.stream_ids and meta.frame.stream_id not in self.stream_ids:
            return None
        if not self.classes and self.min_confidence <= 0:
            return meta
        kept = [o for o in meta.objects if self._wanted(o.label, o.confidence)]
        if len(kept) == len(meta.objects):
            return meta
        out = FrameMetadata()
        out.CopyFrom(meta)
        del out.objects[:]
        out.objects.extend(kept)
        return out

    def _wanted(self, label: str, confidence: float) -> bool:
        return (not self.classes or label in self.classes) and confidence >= self.min_confidence


def parse_query(request: SubscribeRequest) -> Query:
    """Raise InvalidArgumentError naming the first bad field."""
    for i, stream_id in enumerate(request.stream_ids):
        try:
            streams.frames(stream_id)
        except ValueError as e:
            raise InvalidArgumentError(f"stream_ids[{i}]", str(e)) from None
    for i, label in enumerate(request.classes):
        if not label.strip():
            raise InvalidArgumentError(f"classes[{i}]", "expected a class label, got an empty one")
    confidence = request.min_confidence
    if not math.isfinite(confidence) or not 0.0 <= confidence <= 1.0:
        raise InvalidArgumentError("min_confidence", f"expected 0 to 1, got {confidence:g}")
    after = None
    if request.after:
        if request.from_oldest:
            raise InvalidArgumentError(
                "from_oldest", "give either after (resume) or from_oldest, not both"
            )
        try:
            after = parse_position(request.after)
        except ValueError as e:
            raise InvalidArgumentError("after", str(e)) from None
    return Query(
        stream_ids=frozenset(request.stream_ids),
        classes=frozenset(request.classes),
        min_confidence=confidence,
        after=after,
        from_oldest=request.from_oldest,
    )
