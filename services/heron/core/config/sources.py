"""Pipeline sources ([sourceN]): a discriminated union on `type` (1 camera, 2 URI, 3 multi-URI,
4 RTSP), which takes DeepStream's code or the kind's name."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Discriminator, Field, Tag, field_validator

from heron.core.config.file_uri import canonical_file_uri, is_file_uri
from heron.core.config.values import FrameSide, NonNeg, Strict, coded
from heron.core.media_uri import parse_uri


class SourceKind(StrEnum):
    CAMERA_V4L2 = "camera_v4l2"
    URI = "uri"
    MULTI_URI = "multi_uri"
    RTSP = "rtsp"


SOURCE_KINDS = {
    1: SourceKind.CAMERA_V4L2,
    2: SourceKind.URI,
    3: SourceKind.MULTI_URI,
    4: SourceKind.RTSP,
}
source_kind = coded(SourceKind, SOURCE_KINDS)


class RtpProtocol(StrEnum):
    AUTO = "auto"  # UDP first, then TCP
    TCP = "tcp"


RTP_PROTOCOLS = {0: RtpProtocol.AUTO, 4: RtpProtocol.TCP}


class SourceBase(Strict):
    enable: bool = Field(False, description="Sources are off unless enable=1, as in DeepStream.")
    gpu_id: NonNeg = Field(0, description="GPU that decodes.")
    camera_id: NonNeg | None = Field(None, description="Overrides the [sourceN] index as id.")
    source_id: NonNeg | None = Field(None, description="Id stamped on this source's frames.")
    drop_frame_interval: NonNeg = Field(0, description="Keep one decoded frame in N; 0 keeps all.")
    nvbuf_memory_type: int = Field(0, ge=0, le=4, description="NvBufSurface memory type.")
    cudadec_memtype: int = Field(0, ge=0, le=2, description="Decoder output memory.")
    num_decode_surfaces: int = Field(16, ge=1, description="Decoder surfaces.")
    num_extra_surfaces: int = Field(1, ge=0, description="Extra decoder surfaces.")
    intra_decode_enable: bool = Field(False, description="Decode key frames only.")
    smart_record: int = Field(0, ge=0, le=2, description="0 off, 1 cloud events, 2 cloud+local.")
    smart_rec_dir_path: Path | None = Field(
        None, json_schema_extra={"output": True}, description="Smart-record folder."
    )
    smart_rec_file_prefix: str | None = Field(None, description="Smart-record file name prefix.")
    smart_rec_cache: NonNeg | None = Field(None, description="Seconds kept before an event.")
    smart_rec_container: int = Field(0, ge=0, le=1, description="0 MP4, 1 MKV.")
    smart_rec_start_time: NonNeg | None = Field(
        None, description="Seconds before the event to start."
    )
    smart_rec_default_duration: NonNeg | None = Field(
        None, description="Seconds recorded when no stop comes."
    )
    smart_rec_duration: NonNeg | None = Field(None, description="Seconds recorded per event.")
    smart_rec_interval: NonNeg | None = Field(None, description="Seconds between events.")


class CameraSource(SourceBase):
    """type=1: a V4L2 camera (/dev/videoN)."""

    type: Annotated[Literal[SourceKind.CAMERA_V4L2], BeforeValidator(source_kind)] = Field(
        description="1 or camera_v4l2."
    )
    camera_width: FrameSide = Field(description="Capture width in pixels.")
    camera_height: FrameSide = Field(description="Capture height in pixels.")
    camera_fps_n: int = Field(ge=1, description="Frame rate numerator.")
    camera_fps_d: int = Field(1, ge=1, description="Frame rate denominator.")
    camera_v4l2_dev_node: NonNeg = Field(0, description="N of /dev/videoN.")

    @property
    def device(self) -> str:
        return f"/dev/video{self.camera_v4l2_dev_node}"


class UriSourceBase(SourceBase):
    uri: str = Field(
        min_length=1, description="file:, http(s):// or rtsp:// URI; file: URIs read file:///abs."
    )
    num_sources: int = Field(1, ge=1, description="Streams opened from this URI.")
    latency: NonNeg = Field(100, description="RTSP jitter buffer (ms).")
    rtsp_reconnect_interval_sec: NonNeg = Field(0, description="Reconnect after N s silent; 0 off.")
    rtsp_reconnect_attempts: int = Field(-1, ge=-1, description="-1 retries forever.")
    select_rtp_protocol: Annotated[
        RtpProtocol, BeforeValidator(coded(RtpProtocol, RTP_PROTOCOLS))
    ] = Field(RtpProtocol.AUTO, description="0 UDP then TCP, 4 TCP only.")

    @field_validator("uri")
    @classmethod
    def _has_scheme(cls, uri: str) -> str:
        if is_file_uri(uri):
            # One spelling (file:///abs) for every accepted form, so consumers need only one.
            return canonical_file_uri(uri)
        if "://" not in uri:
            raise ValueError(
                f"expected a URI with a scheme (file:///abs/clip.mp4, rtsp://host/stream, ...), "
                f"found {uri!r}"
            )
        # The scheme and host as ingest will open them: refused here, not when the run starts.
        parse_uri(uri, check_exists=False)
        return uri


class UriSource(UriSourceBase):
    """type=2: one URI decoded by uridecodebin."""

    type: Annotated[Literal[SourceKind.URI], BeforeValidator(source_kind)] = Field(
        description="2 or uri."
    )


class MultiUriSource(UriSourceBase):
    """type=3: the same URI opened num-sources times."""

    type: Annotated[Literal[SourceKind.MULTI_URI], BeforeValidator(source_kind)] = Field(
        description="3 or multi_uri."
    )


class RtspSource(UriSourceBase):
    """type=4: an RTSP camera, reconnected when it goes silent."""

    type: Annotated[Literal[SourceKind.RTSP], BeforeValidator(source_kind)] = Field(
        description="4 or rtsp."
    )

    @field_validator("uri")
    @classmethod
    def _is_rtsp(cls, uri: str) -> str:
        if not uri.startswith(("rtsp://", "rtsps://")):
            raise ValueError(f"a type=4 (rtsp) source needs an rtsp:// URI, found {uri!r}")
        return uri


def _source_tag(value: Any) -> str | None:
    raw = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    try:
        member = source_kind(raw)
    except ValueError:
        return None
    return member.value if isinstance(member, SourceKind) else None


Source = Annotated[
    Annotated[CameraSource, Tag(SourceKind.CAMERA_V4L2.value)]
    | Annotated[UriSource, Tag(SourceKind.URI.value)]
    | Annotated[MultiUriSource, Tag(SourceKind.MULTI_URI.value)]
    | Annotated[RtspSource, Tag(SourceKind.RTSP.value)],
    Discriminator(
        _source_tag,
        custom_error_type="source_type",
        custom_error_message="expected source type 1 (camera_v4l2), 2 (uri), 3 (multi_uri) "
        "or 4 (rtsp)",
    ),
]
