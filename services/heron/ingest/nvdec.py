"""NVDEC decoding with PyNvVideoCodec, behind the same `Decoder` interface as PyAV.

PyNvVideoCodec demuxes with its own (FFmpeg-based) demuxer and decodes on the GPU; frames are
copied to host memory as NV12 and converted to BGR with OpenCV, so everything downstream sees
the same `DecodedFrame` as from the CPU decoder. Needs an NVIDIA GPU and driver: importing
PyNvVideoCodec or creating the decoder fails without one, and that failure is reported as a
permanent source error naming the cause.

Not run on the GPU-less development machines; see docs/ingest.md for the command that benches
it on a GPU machine.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import numpy as np

from heron.core.media_uri import MediaKind
from heron.ingest.decoding import DecodedFrame, OpenRequest
from heron.ingest.errors import SourceFailedError, SourceUnavailableError


def _load_nvc() -> Any:
    try:
        import PyNvVideoCodec as nvc  # type: ignore[import-not-found]  # noqa: N813
    except ImportError as e:  # not installed, or no libcuda / libnvcuvid on this host
        raise SourceFailedError(
            f"decoder 'nvdec' needs PyNvVideoCodec and an NVIDIA GPU driver: {e} "
            "(pip install pynvvideocodec; or set decoder: cpu)"
        ) from e
    return nvc


class NvDecoder:
    """Decodes on GPU `gpu_id`; files, HTTP and RTSP (what PyNvVideoCodec's demuxer opens)."""

    name = "nvdec"

    def __init__(self, gpu_id: int = 0) -> None:
        self.gpu_id = gpu_id

    def frames(self, request: OpenRequest) -> Iterator[DecodedFrame]:
        nvc = _load_nvc()
        target = request.target
        if target.kind in (MediaKind.V4L2, MediaKind.LAVFI):
            raise SourceFailedError(
                f"decoder 'nvdec' cannot open {target.kind.value} sources (they are not "
                "compressed streams); use decoder: cpu for them"
            )
        try:
            demuxer = nvc.CreateDemuxer(filename=target.url)
            decoder = nvc.CreateDecoder(
                gpuid=self.gpu_id,
                codec=demuxer.GetNvCodecId(),
                cudacontext=0,
                cudastream=0,
                usedevicememory=False,  # host NV12: the frame store works on host memory
            )
        except Exception as e:  # PyNvVideoCodec raises plain RuntimeError/ValueError
            raise SourceUnavailableError(f"nvdec cannot open {target.url!r}: {e}") from e
        time_base = _time_base(demuxer)
        try:
            for packet in demuxer:
                for frame in decoder.Decode(packet):
                    yield DecodedFrame(_nv12_to_bgr(frame), _pts(frame), time_base)
        except SourceFailedError:
            raise
        except Exception as e:
            raise SourceUnavailableError(f"nvdec reading {target.url!r} failed: {e}") from e


def _nv12_to_bgr(frame: Any) -> np.ndarray:
    import cv2

    size = int(frame.framesize())
    address = frame.GetPtrToPlane(0)
    raw = np.ctypeslib.as_array(ctypes.cast(address, ctypes.POINTER(ctypes.c_uint8)), (size,))
    height, width = _frame_size(frame, size)
    nv12 = raw.reshape(height * 3 // 2, width)
    return np.asarray(cv2.cvtColor(nv12, cv2.COLOR_YUV2BGR_NV12))


def _frame_size(frame: Any, size: int) -> tuple[int, int]:
    shape = getattr(frame, "shape", None)
    if shape is not None and len(shape) >= 2:  # NV12 on the host: (height * 3/2, width)
        return int(shape[0]) * 2 // 3, int(shape[1])
    width = int(frame.width) if hasattr(frame, "width") else 0
    if not width:
        raise SourceFailedError("nvdec returned a frame without a shape or width")
    return size * 2 // 3 // width, width


def _pts(frame: Any) -> int | None:
    get = getattr(frame, "getPTS", None)
    return int(get()) if callable(get) else None


def _time_base(demuxer: Any) -> Fraction | None:
    # Timestamps are in the container stream's time base; None when the demuxer does not say.
    get = getattr(demuxer, "TimeBase", None)
    if callable(get):
        value = get()
        try:
            return Fraction(value).limit_denominator(1_000_000)
        except (TypeError, ValueError):
            return None
    return None
