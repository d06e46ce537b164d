"""Decoders: open a media target and yield BGR frames. One interface, two backends.

`PyAvDecoder` (FFmpeg on the CPU) is the default. `heron.ingest.nvdec.NvDecoder` decodes on an
NVIDIA GPU with PyNvVideoCodec; `decoder_for` picks one from the settings. A decoder raises
`SourceUnavailableError` for what a retry may fix (refused connection, timeout, a dead server)
and `SourceFailedError` for what it cannot (no video stream in the file).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from heron.core.media_uri import MediaKind, MediaTarget
from heron.core.plan.settings.ingest import DecoderKind
from heron.ingest.decoding import DecodedFrame, Decoder, OpenRequest
from heron.ingest.errors import SourceFailedError, SourceUnavailableError

if TYPE_CHECKING:
    import av.container

# An open that failed after at least this share of its timeout was waiting, not refused: the
# timer's own slack on a loaded machine is well under 10 %.
SILENCE_FRACTION = 0.9


def decoder_for(kind: DecoderKind) -> Decoder:
    if kind is DecoderKind.NVDEC:
        from heron.ingest.nvdec import NvDecoder

        return NvDecoder()
    return PyAvDecoder()


class PyAvDecoder:
    """FFmpeg through PyAV, threaded; frames converted yuv420p → BGR by OpenCV (the fastest
    path measured on these machines, see NOTES.md)."""

    name = "pyav"

    def frames(self, request: OpenRequest) -> Iterator[DecodedFrame]:
        container = _open(request)
        try:
            yield from _decode(container, request)
        finally:
            container.close()


def _open(request: OpenRequest) -> av.container.InputContainer:
    import av

    target = request.target
    timeout = None if request.timeout_s is None else (request.timeout_s, request.timeout_s)
    started = time.monotonic()
    try:
        return av.open(
            target.url, mode="r", format=target.format, options=request.options, timeout=timeout
        )
    except (av.error.FFmpegError, OSError) as e:
        reason = _open_reason(e, request, time.monotonic() - started)
        message = f"cannot open {target.kind.value} source {_safe(target)}: {reason}"
        if _permanent(target, e):
            raise SourceFailedError(message) from e
        raise SourceUnavailableError(message) from e


def _permanent(target: MediaTarget, e: BaseException) -> bool:
    """A local file that does not open, or a web server saying no (4xx), will not get better.
    An RTSP 404 may: a camera that restarts does not serve its mount for a while."""
    import av

    if target.kind is MediaKind.FILE:
        return True
    return target.kind is MediaKind.HTTP and isinstance(e, av.error.HTTPClientError)


def _decode(container: av.container.InputContainer, request: OpenRequest) -> Iterator[DecodedFrame]:
    import av

    if not container.streams.video:
        raise SourceFailedError(f"{_safe(request.target)} has no video stream")
    stream = container.streams.video[0]
    # Frame threading holds back `threads` frames: right for files, wrong for a live camera.
    stream.thread_type = "SLICE" if request.target.live else "AUTO"
    if request.threads:
        stream.thread_count = request.threads
    rate = stream.average_rate or stream.guessed_rate
    fps = float(rate) if rate else None
    # A file does not heal: a read error or a damaged packet there is a truncated or corrupt
    # file, which ends the stream as failed, not as a clean end of stream.
    is_file = request.target.kind is MediaKind.FILE
    frames = damaged = 0
    try:
        for packet in container.demux(stream):
            started = time.perf_counter()  # after demux: a live source's wait is not decoding
            try:
                decoded = packet.decode()
            except av.error.InvalidDataError:
                damaged += 1
                continue  # a damaged packet (lost RTP data); the next keyframe recovers
            for frame in decoded:
                image = to_bgr(frame)
                took = time.perf_counter() - started
                frames += 1
                yield DecodedFrame(image, frame.pts, frame.time_base, took, fps)
                started = time.perf_counter()
    except (av.error.FFmpegError, OSError) as e:
        message = f"reading {_safe(request.target)} failed after {frames} frames: {_reason(e)}"
        raise (SourceFailedError if is_file else SourceUnavailableError)(message) from e
    # Frame threading hides a damaged packet; the count the container declares tells.
    declared = int(stream.frames or 0)
    if is_file and (damaged or frames < declared * 0.95):
        said = f" of the {declared} it declares" if declared else ""
        raise SourceFailedError(
            f"{_safe(request.target)}: only {frames} frames{said} could be decoded: the file is "
            "truncated or corrupt"
        )


def to_bgr(frame: Any) -> np.ndarray:
    """A PyAV VideoFrame as BGR: yuv420p through cv2.cvtColor, anything else through FFmpeg."""
    import cv2

    if frame.format.name == "yuv420p" and frame.width % 2 == 0 and frame.height % 2 == 0:
        planar = frame.to_ndarray()
        return np.asarray(cv2.cvtColor(planar, cv2.COLOR_YUV2BGR_I420))
    return np.asarray(frame.to_ndarray(format="bgr24"))


def _reason(e: BaseException) -> str:
    import av

    if isinstance(e, av.error.ExitError):
        return "timed out (no data within the read timeout)"
    return f"{type(e).__name__}: {e}"


def _open_reason(e: BaseException, request: OpenRequest, waited_s: float) -> str:
    """Why an open failed. FFmpeg's RTSP client reports a server that accepted the connection
    and then never answered (a hung or SIGSTOPped camera) as InvalidDataError once its timeout
    fired, which reads as a broken stream; what took the whole timeout was a silence."""
    import av

    timeout = request.timeout_s
    silent = timeout is not None and waited_s >= timeout * SILENCE_FRACTION
    if request.target.live and silent and isinstance(e, av.error.InvalidDataError):
        return f"timed out (no answer within {timeout:g} s; the server accepted the connection)"
    return _reason(e)


def _safe(target: MediaTarget) -> str:
    """The URL without credentials (rtsp://user:pass@cam/... is common)."""
    from heron.core.runtime import redact_url

    return repr(redact_url(target.url))
