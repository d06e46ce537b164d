"""Sources: one abstraction, one method (`frames()`), plus `reset()`.

A source turns a planned stream into decoded frames. How it ends says what happened:
- returning: a finite source (file, HTTP) reached its end (after its loops, with file-loop);
- `SourceUnavailableError`: a live source could not be opened, went away or stalled; the stream
  worker waits (backoff), calls `reset()` and asks for `frames()` again;
- `SourceFailedError`: nothing will help.
End-of-stream on a live source (RTSP, camera) is a disconnect, not an end: FFmpeg ends the demux
loop of a dead RTSP server without raising (NOTES.md).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace
from typing import Protocol

from heron.core.media_uri import MediaKind
from heron.core.plan.sources import PlannedSource
from heron.ingest.decoding import DecodedFrame, Decoder, OpenRequest
from heron.ingest.errors import SourceUnavailableError
from heron.v1.stream_pb2 import RtspTransport, SourceSpec


class Source(Protocol):
    spec: SourceSpec
    live: bool

    def frames(self) -> Generator[DecodedFrame, None, None]: ...

    def reset(self) -> None: ...


class FileSource:
    """A file, an HTTP(S) URL or a non-realtime lavfi graph; loops when `spec.loop`.

    Timestamps keep rising across loops (each pass is shifted by the length of the ones before),
    as deepstream-app's file-loop does, so consumers never see time go backwards.
    """

    live = False

    def __init__(
        self,
        planned: PlannedSource,
        decoder: Decoder,
        *,
        threads: int = 0,
        read_timeout_s: float | None = None,
    ) -> None:
        self.spec = planned.spec
        timeout = None  # local reads do not stall; a web server may
        if planned.target.kind is MediaKind.HTTP:
            timeout = planned.read_timeout_s or read_timeout_s
        self._request = OpenRequest(planned.target, timeout_s=timeout, threads=threads)
        self._decoder = decoder
        self.passes = 0
        self._offset = 0

    def frames(self) -> Generator[DecodedFrame, None, None]:
        while True:
            last: int | None = None
            step = 1
            for decoded in self._decoder.frames(self._request):
                if decoded.pts is None:
                    yield decoded
                    continue
                if last is not None and decoded.pts > last:
                    step = decoded.pts - last
                last = decoded.pts
                yield replace(decoded, pts=decoded.pts + self._offset)
            self.passes += 1
            if not self.spec.loop or last is None:
                return
            self._offset += last + step

    def reset(self) -> None:
        self.passes = 0
        self._offset = 0


class LiveSource:
    """An RTSP camera, a V4L2 camera or a realtime lavfi graph: never ends on its own."""

    live = True

    def __init__(self, request: OpenRequest, spec: SourceSpec, decoder: Decoder) -> None:
        self.spec = spec
        self.request = request
        self._decoder = decoder

    def frames(self) -> Generator[DecodedFrame, None, None]:
        yield from self._decoder.frames(self.request)
        raise SourceUnavailableError(
            f"{self.spec.stream_id}: the live source ended its stream (server or device gone)"
        )

    def reset(self) -> None:
        """Nothing is kept between connections: the next `frames()` opens a fresh one."""


def rtsp_options(spec: SourceSpec) -> dict[str, str]:
    """Low-latency demuxer options (NOTES.md: open in ~0.1 s instead of ~1 s)."""
    options = {
        "fflags": "nobuffer",
        "flags": "low_delay",
        "analyzeduration": "0",
        "probesize": "32",
    }
    if spec.rtsp_transport == RtspTransport.RTSP_TRANSPORT_TCP:
        options["rtsp_transport"] = "tcp"
    elif spec.rtsp_transport == RtspTransport.RTSP_TRANSPORT_UDP:
        options["rtsp_transport"] = "udp"
    if spec.latency_ms:
        # FFmpeg's reordering window stands in for rtspsrc's jitter buffer `latency`.
        options["max_delay"] = str(spec.latency_ms * 1000)
    return options


def camera_options(spec: SourceSpec) -> dict[str, str]:
    options: dict[str, str] = {}
    if spec.width and spec.height:
        options["video_size"] = f"{spec.width}x{spec.height}"
    if spec.fps_n:
        options["framerate"] = f"{spec.fps_n}/{spec.fps_d or 1}"
    return options


def source_for(
    planned: PlannedSource, decoder: Decoder, *, read_timeout_s: float, threads: int = 0
) -> Source:
    """The source for a planned stream. A live source's reads time out after `read_timeout_s`
    (the source's own rtsp-reconnect-interval-sec when set), so a stalled one is noticed."""
    target = planned.target
    if not target.live:
        return FileSource(planned, decoder, threads=threads, read_timeout_s=read_timeout_s)
    timeout = planned.read_timeout_s or read_timeout_s
    # FFmpeg's socket timeout fires after about twice the value given (NOTES.md); halve it so
    # a stall is reported within the configured time.
    per_read = timeout / 2
    options: dict[str, str] = {}
    if target.kind is MediaKind.RTSP:
        options = rtsp_options(planned.spec)
    elif target.kind is MediaKind.V4L2:
        options = camera_options(planned.spec)
    request = OpenRequest(target, options=options, timeout_s=per_read, threads=threads)
    return LiveSource(request, planned.spec, decoder)
