"""type=4: the overlay's frames served over RTSP by `heron.overlay.sinks.rtsp.RtspServer`
(rtsp://address:rtsp-port/ds-test; see docs/rtsp.md). This wrapper gives it the sink interface:
the server starts as soon as the frame size is known (the tiler's size, given up front, or the
first frame's), and a frame of another size is scaled to the served size."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from heron.core.config.sinks import RtspSink
from heron.overlay.sinks.base import Image, SinkConfigError
from heron.overlay.sinks.rtsp import RtspServer
from heron.overlay.sinks.rtsp_metrics import RtspMetrics
from heron.overlay.sinks.rtsp_settings import RtspSettings
from heron.v1.detection_pb2 import FrameMetadata


class RtspVideoSink:
    kind = "rtsp"

    def __init__(
        self,
        name: str,
        sink: RtspSink,
        *,
        fps: float,
        address: str = "127.0.0.1",
        size: tuple[int, int] | None = None,
        metrics: RtspMetrics | None = None,
    ) -> None:
        self.name, self.sink, self.fps, self.address = name, sink, fps, address
        self.metrics = metrics
        self.server: RtspServer | None = None
        self.frames = 0
        self._settings(16, 16)  # a bad [sinkN] fails now, not at the first frame
        if size is not None:
            self._start(*size)

    def _settings(self, width: int, height: int) -> RtspSettings:
        try:
            return RtspSettings.from_sink(
                self.sink,
                width=max(16, width - width % 2),
                height=max(16, height - height % 2),
                fps=self.fps,
                address=self.address,
            )
        except ValueError as e:
            raise SinkConfigError(f"[{self.name}] (type=4 rtsp): {e}") from e

    def _start(self, width: int, height: int) -> RtspServer:
        settings = self._settings(width, height)
        server = RtspServer.from_settings(settings, self.metrics)
        server.start()
        self.server = server
        return server

    @property
    def url(self) -> str | None:
        return self.server.url if self.server is not None else None

    def write(self, frame: Image | None, metadata: Sequence[FrameMetadata]) -> None:
        if frame is None:
            return
        server = self.server or self._start(frame.shape[1], frame.shape[0])
        s = server.settings
        if (frame.shape[1], frame.shape[0]) != (s.width, s.height):
            import cv2

            frame = np.asarray(
                cv2.resize(frame, (s.width, s.height), interpolation=cv2.INTER_AREA), np.uint8
            )
        server.push(frame)  # never blocks; drops when nobody watches or it is behind
        self.frames += 1

    def commit(self) -> None:
        pass  # live video keeps nothing to commit

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def reset(self) -> None:
        pass
