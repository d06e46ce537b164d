"""Per-stream tracker state: one tracker per stream, dropped when the stream ends.

`tracking-id-reset-mode` (DeepStream's) decides whether a stream's ids start again from 1:
0 never, 1 when the stream restarts (a new Started event), 2 at EOS, 3 at both. When ids go
on, only the stream's next-id counter outlives the stream; everything else is dropped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from heron.core.bus.admission import AdmissionSettings, FrameOrder
from heron.tracker.core import IdSource, TargetTracker
from heron.tracker.factory import TrackerSpec, build_tracker
from heron.v1.detection_pb2 import DetectedObject

_RESET_ON_RESTART = frozenset({1, 3})
_RESET_ON_EOS = frozenset({2, 3})


@dataclass
class StreamState:
    tracker: TargetTracker
    order: FrameOrder  # where the stream's frame numbers are: in order, stale or from the future
    # Each reported track's latest detector object (label, class, attributes), for frames the
    # detector skipped; with the frame index it was last reported at.
    objects: dict[int, tuple[DetectedObject, int]] = field(default_factory=dict)
    frames: int = 0  # frames tracked
    eos_frames: int | None = None  # frames the source published before EOS
    eos_at: float = 0.0  # monotonic time of the EOS event


class Streams:
    def __init__(
        self, spec: TrackerSpec, reset_mode: int, admission: AdmissionSettings | None = None
    ) -> None:
        self.spec = spec
        self.reset_mode = reset_mode
        self.admission = admission or AdmissionSettings()
        self._states: dict[str, StreamState] = {}
        self._ids: dict[str, IdSource] = {}

    def __len__(self) -> int:
        return len(self._states)

    def __contains__(self, stream_id: object) -> bool:
        return stream_id in self._states

    def get(self, stream_id: str) -> StreamState:
        state = self._states.get(stream_id)
        if state is None:
            ids = self._ids.setdefault(stream_id, IdSource())
            state = StreamState(build_tracker(self.spec, ids), FrameOrder(self.admission))
            self._states[stream_id] = state
        return state

    def started(self, stream_id: str) -> None:
        """A (re)started source: frames begin again, old tracks and frame order are meaningless."""
        if self.reset_mode in _RESET_ON_RESTART:
            self._ids.pop(stream_id, None)
        self._states.pop(stream_id, None)

    def ended(self, stream_id: str, frames: int) -> None:
        """EOS after `frames` frames: drop the stream once its last frame is tracked."""
        state = self._states.get(stream_id)
        if state is None:
            self._finish(stream_id)
            return
        state.eos_frames, state.eos_at = frames, time.monotonic()

    def after_frame(self, stream_id: str, frame_number: int) -> None:
        state = self._states.get(stream_id)
        if (
            state is not None
            and state.eos_frames is not None
            and frame_number + 1 >= state.eos_frames
        ):
            self._finish(stream_id)

    def expire(self, grace_s: float) -> list[str]:
        """Drop streams whose EOS came more than `grace_s` ago (their last frames never came)."""
        now = time.monotonic()
        late = [
            s
            for s, state in self._states.items()
            if state.eos_frames is not None and now - state.eos_at > grace_s
        ]
        for s in late:
            self._finish(s)
        return late

    def _finish(self, stream_id: str) -> None:
        self._states.pop(stream_id, None)
        if self.reset_mode in _RESET_ON_EOS:
            self._ids.pop(stream_id, None)
