"""type=1 (and type=2 without a display): takes frames and discards them, counting them."""

from __future__ import annotations

from collections.abc import Sequence

from heron.overlay.sinks.base import Image
from heron.v1.detection_pb2 import FrameMetadata


class FakeSink:
    kind = "fake"

    def __init__(self, name: str) -> None:
        self.name = name
        self.frames = 0

    def write(self, frame: Image | None, metadata: Sequence[FrameMetadata]) -> None:
        if frame is not None:
            self.frames += 1

    def commit(self) -> None:
        pass

    def close(self) -> None:
        pass

    def reset(self) -> None:
        pass
