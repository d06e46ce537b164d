"""A media file's frame rate, read from its container with PyAV, for the overlay's RTSP and
file timing.

PyAV is not a core dependency (pyproject: only the ingest and overlay extras bring it), so it is
imported on use and its absence reads as "unknown": the overlay's own default rate holds. The
planner takes this function as an argument rather than calling it itself: a runner that cannot
reach the media (the operator renders plans for pods that mount it) passes one that answers None,
while `heron run` and `heron config plan` pass this one and so show the same plan. Where the
overlay is planned by default (its package is installed), PyAV is installed with it.
"""

from __future__ import annotations

from heron.core.media_uri import MediaTarget

PLAUSIBLE_FPS = (1.0, 240.0)


def probe_frame_rate(target: MediaTarget) -> float | None:
    """The container's average video frame rate; None when unknown or implausible."""
    try:
        import av
    except ImportError:
        return None
    try:
        with av.open(target.url, format=target.format, options=target.options) as container:
            rate = container.streams.video[0].average_rate
    except (OSError, IndexError, ValueError, av.error.FFmpegError):
        return None
    # A file's average rate can be nonsense (a badly timestamped remux): keep it plausible.
    low, high = PLAUSIBLE_FPS
    return float(rate) if rate and low <= float(rate) <= high else None
