"""What the RTSP sink needs to know, and the mapping from deepstream-app's [sinkN] type=4 group.

deepstream-app encodes once (NVENC, or x264 with enc-type=1), sends RTP to `udp-port` on
localhost and has its RTSP server read it back. Heron's server owns the encoder in-process, so
`udp-port` has nothing to do, and `enc-type` can only mean the CPU encoder here.
"""

from __future__ import annotations

import ipaddress
import logging
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from heron.core.config.sinks import Codec, EncoderType, RtspSink

log = logging.getLogger(__name__)


class RtspCodec(StrEnum):
    H264 = "h264"
    H265 = "h265"


class H264Profile(StrEnum):
    BASELINE = "baseline"
    MAIN = "main"
    HIGH = "high"


# deepstream-app's `profile` codes for H.264 (0 baseline, 2 main, 4 high); others are refused.
DS_H264_PROFILES = {0: H264Profile.BASELINE, 2: H264Profile.MAIN, 4: H264Profile.HIGH}
ENCODERS = {RtspCodec.H264: "x264enc", RtspCodec.H265: "x265enc"}
PAYLOADERS = {RtspCodec.H264: "rtph264pay", RtspCodec.H265: "rtph265pay"}


class RtspSettings(BaseModel):
    """One RTSP endpoint: rtsp://address:port/mount, fed with frames of one size."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    port: int = Field(8554, ge=1, le=65535, description="RTSP (TCP) port to listen on.")
    mount: str = Field(
        "/ds-test", pattern=r"^/[A-Za-z0-9._~\-/]*$", description="Path of the stream's URL."
    )
    address: str = Field("127.0.0.1", description="IP address to listen on; 0.0.0.0 for all.")
    width: int = Field(ge=16, le=8192, multiple_of=2, description="Frame width (even, I420).")
    height: int = Field(ge=16, le=8192, multiple_of=2, description="Frame height (even, I420).")
    fps: float = Field(30.0, gt=0, le=240, description="Frame rate announced to viewers.")
    bitrate_kbps: int = Field(4000, ge=50, le=200_000, description="Encoder target bitrate.")
    codec: RtspCodec = Field(RtspCodec.H264, description="h264 (x264enc) or h265 (x265enc).")
    profile: H264Profile = Field(H264Profile.BASELINE, description="H.264 profile.")
    key_int_max: int = Field(
        30, ge=1, le=1000, description="Most frames between keyframes (viewers joining get one)."
    )
    encoder_threads: int = Field(
        1,
        ge=1,
        le=64,
        description="Encoder threads. 1 is fastest to the viewer; more use frame threads, each "
        "adding a frame of latency (sliced threads would tear frames in FFmpeg-based viewers).",
    )
    queue_frames: int = Field(
        2, ge=1, le=64, description="Raw frames queued before the encoder; older ones drop."
    )

    @field_validator("address")
    @classmethod
    def _ip(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError as e:
            raise ValueError(
                f"expected an IP address such as 127.0.0.1 or 0.0.0.0, got {value!r}"
            ) from e
        return value

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.address in ("0.0.0.0", "::") else self.address
        host = f"[{host}]" if ":" in host else host
        return f"rtsp://{host}:{self.port}{self.mount}"

    @classmethod
    def from_sink(
        cls,
        sink: RtspSink,
        *,
        width: int,
        height: int,
        fps: float,
        address: str = "127.0.0.1",
    ) -> RtspSettings:
        """Settings for a [sinkN] type=4 group; the frame size and rate come from the tiler."""
        if sink.codec is Codec.MPEG4:
            raise ValueError(
                "sink codec: expected 1 (h264) or 2 (h265) for an RTSP sink, got 3 (mpeg4)"
            )
        if sink.enc_type is EncoderType.HW:
            log.warning(
                "sink enc-type=0 (hardware NVENC) is not available to the CPU RTSP server; "
                "encoding with %s instead",
                ENCODERS[RtspCodec(sink.codec.value)],
            )
        profile = DS_H264_PROFILES.get(sink.profile)
        if profile is None and sink.codec is Codec.H264:
            raise ValueError(
                f"sink profile: expected 0 (baseline), 2 (main) or 4 (high) for H.264, "
                f"got {sink.profile}"
            )
        log.debug(
            "sink udp-port=%d is unused: the encoder feeds the server in-process", sink.udp_port
        )
        return cls(
            port=sink.rtsp_port,
            address=address,
            width=width,
            height=height,
            fps=fps,
            bitrate_kbps=max(50, sink.bitrate // 1000),
            codec=RtspCodec(sink.codec.value),
            profile=profile or H264Profile.BASELINE,
            key_int_max=sink.iframeinterval,
        )
