"""The one interface every overlay sink has: `write(frame, metadata)`, `commit()`, `close()`,
`reset()`.

`write` gets the composited BGR frame (the tiler's canvas, or one stream's frame) and the
FrameMetadata of every source frame in it; metadata-only sinks (the message broker) get
`None` for the frame, video sinks are never called with `None`. The frame is only lent:
a sink that keeps pixels past `write` copies them (the encoders do, by converting).
`commit()` comes after the writes of one composite and before the overlay acknowledges their
metadata: what was written must then survive the overlay being killed (the file sink journals
it; sinks that keep nothing make it a no-op). `close()` flushes and releases; `reset()` forgets
per-stream state (a restarted stream) without closing outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from heron.v1.detection_pb2 import FrameMetadata

Image = npt.NDArray[np.uint8]


class SinkError(Exception):
    """A sink could not take a frame (encoder failure, broker gone after retries)."""


class RecordingError(SinkError):
    """A sink that records (a file) could not write: the recording would miss frames, so the
    overlay stops the run rather than go on without them."""


class SinkConfigError(ValueError):
    """A [sinkN] group the overlay cannot run: names the group, the key, expected and got."""


class Sink(Protocol):
    name: str  # "sink1", for logs and the `sink` metric label
    kind: str  # "fake", "file", "rtsp", "msgbroker"

    def write(self, frame: Image | None, metadata: Sequence[FrameMetadata]) -> None: ...

    def commit(self) -> None: ...

    def close(self) -> None: ...

    def reset(self) -> None: ...


class BrokerError(SinkError):
    """A message broker did not take a message (down, refused, timed out)."""
