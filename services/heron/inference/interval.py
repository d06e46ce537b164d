"""nvinfer's `interval`: infer one frame, pass the next `interval` through, per stream."""

from __future__ import annotations

import threading


class IntervalGate:
    """Says which frames to infer: the 1st, (interval+2)th, ... of every stream.

    The inference loop asks `admit`; a SetParameters command may change the interval from
    another thread (`set_interval`), so both hold one lock.
    """

    def __init__(self, interval: int) -> None:
        self._lock = threading.Lock()
        self.period = self._period(interval)
        self._seen: dict[str, int] = {}

    @property
    def interval(self) -> int:
        return self.period - 1

    def admit(self, stream_id: str) -> bool:
        """True when this stream's next frame is to be inferred (the gate then moves on)."""
        with self._lock:
            count = self._seen.get(stream_id, 0)
            self._seen[stream_id] = count + 1
            return count % self.period == 0

    def set_interval(self, interval: int) -> None:
        """A new interval from the next frame on. Every stream starts over (its next frame is
        inferred): a stream that was 500 frames into a long interval gets detections at once
        after the interval is lowered, instead of waiting out the old period."""
        period = self._period(interval)
        with self._lock:
            self.period = period
            self._seen.clear()

    def reset(self) -> None:
        with self._lock:
            self._seen.clear()

    @staticmethod
    def _period(interval: int) -> int:
        if interval < 0:
            raise ValueError(f"interval must be >= 0, got {interval}")
        return interval + 1
