"""nvinfer's `interval`: infer one frame, pass the next `interval` through, per stream."""

from __future__ import annotations


class IntervalGate:
    """Says which frames to infer: the 1st, (interval+2)th, ... of every stream."""

    def __init__(self, interval: int) -> None:
        if interval < 0:
            raise ValueError(f"interval must be >= 0, got {interval}")
        self.period = interval + 1
        self._seen: dict[str, int] = {}

    def admit(self, stream_id: str) -> bool:
        """True when this stream's next frame is to be inferred (the gate then moves on)."""
        count = self._seen.get(stream_id, 0)
        self._seen[stream_id] = count + 1
        return count % self.period == 0

    def reset(self) -> None:
        self._seen.clear()
