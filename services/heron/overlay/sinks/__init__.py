"""Sinks of the overlay service: fake, file (PyAV), RTSP (GStreamer) and message broker, behind
one interface (`Sink`: write / close / reset; `build_sinks` makes them from [sinkN] groups).
Importing this package loads no GStreamer, PyAV, OpenCV or broker client: each is imported
when its sink starts (`RtspServer.start()` names the packages to install when one is missing).
"""

from heron.overlay.sinks.base import BrokerError, Sink, SinkConfigError, SinkError
from heron.overlay.sinks.build import BoundSink, SinkOptions, build_sinks
from heron.overlay.sinks.file import FileVideoSink
from heron.overlay.sinks.frames import FrameFormatError
from heron.overlay.sinks.gst import GStreamerMissingError
from heron.overlay.sinks.rtsp import PortInUseError, RtspServer
from heron.overlay.sinks.rtsp_metrics import RtspMetrics
from heron.overlay.sinks.rtsp_settings import RtspCodec, RtspSettings

__all__ = [
    "BoundSink",
    "BrokerError",
    "FileVideoSink",
    "FrameFormatError",
    "GStreamerMissingError",
    "PortInUseError",
    "RtspCodec",
    "RtspMetrics",
    "RtspServer",
    "RtspSettings",
    "Sink",
    "SinkConfigError",
    "SinkError",
    "SinkOptions",
    "build_sinks",
]
