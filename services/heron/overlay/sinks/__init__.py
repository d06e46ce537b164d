"""Sinks of the overlay service. Importing this package loads no GStreamer: `RtspServer.start()`
does, with an error naming the packages to install when it is missing."""

from heron.overlay.sinks.frames import FrameFormatError
from heron.overlay.sinks.gst import GStreamerMissingError
from heron.overlay.sinks.rtsp import PortInUseError, RtspServer
from heron.overlay.sinks.rtsp_metrics import RtspMetrics
from heron.overlay.sinks.rtsp_settings import RtspCodec, RtspSettings

__all__ = [
    "FrameFormatError",
    "GStreamerMissingError",
    "PortInUseError",
    "RtspCodec",
    "RtspMetrics",
    "RtspServer",
    "RtspSettings",
]
