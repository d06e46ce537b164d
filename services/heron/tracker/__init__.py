"""Multi-object trackers and the tracker service (`python -m heron.tracker`); see docs/tracker.md.

Every tracker has one method, `update(detections, frame) -> tracks`, and `reset()`. The
service keeps one tracker per stream, picked by the pipeline config's [tracker] group.
"""

from heron.core.config.tracker_params import TrackerKind, TrackerParams
from heron.core.detections import Detections  # what `update` takes: re-exported for callers
from heron.tracker.base import Frame, Tracked, Tracker
from heron.tracker.factory import build_tracker, kind_from_library, tracker_spec

__all__ = [
    "Detections",
    "Frame",
    "Tracked",
    "Tracker",
    "TrackerKind",
    "TrackerParams",
    "build_tracker",
    "kind_from_library",
    "tracker_spec",
]
