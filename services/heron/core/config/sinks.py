"""Pipeline sinks ([sinkN]): a discriminated union on `type` (1 fake, 2 EGL, 3 file, 4 RTSP,
6 message broker), which takes DeepStream's code or the kind's name."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Discriminator, Field, Tag, model_validator

from heron.core.config.problems import Problems
from heron.core.config.values import MAX_FRAME_SIDE, NonNeg, Port, Strict, coded


class SinkKind(StrEnum):
    FAKE = "fake"
    EGL = "egl"
    FILE = "file"
    RTSP = "rtsp"
    MSGBROKER = "msgbroker"


SINK_KINDS = {
    1: SinkKind.FAKE,
    2: SinkKind.EGL,
    3: SinkKind.FILE,
    4: SinkKind.RTSP,
    6: SinkKind.MSGBROKER,
}
sink_kind = coded(SinkKind, SINK_KINDS)


class Container(StrEnum):
    MP4 = "mp4"
    MKV = "mkv"


class Codec(StrEnum):
    H264 = "h264"
    H265 = "h265"
    MPEG4 = "mpeg4"


class EncoderType(StrEnum):
    HW = "hw"
    SW = "sw"


class SinkBase(Strict):
    enable: bool = Field(False, description="Use this sink.")
    gpu_id: NonNeg = Field(0, description="GPU to run on.")
    sync: bool = Field(False, description="Render at the stream's pace (1) or as fast as possible.")
    qos: bool | None = Field(None, description="Drop late frames (GStreamer QoS).")
    source_id: NonNeg = Field(0, description="With link-to-demux: which stream this sink shows.")
    link_to_demux: bool = Field(False, description="Show one stream, not the tiles.")
    nvbuf_memory_type: int = Field(0, ge=0, le=4, description="NvBufSurface memory type.")


class FakeSink(SinkBase):
    """type=1: discard frames (benchmarks, headless)."""

    type: Annotated[Literal[SinkKind.FAKE], BeforeValidator(sink_kind)] = Field(
        description="1 or fake."
    )


class EglSink(SinkBase):
    """type=2: an on-screen window; becomes a fake sink when there is no display."""

    type: Annotated[Literal[SinkKind.EGL], BeforeValidator(sink_kind)] = Field(
        description="2 or egl."
    )
    width: int = Field(0, ge=0, le=MAX_FRAME_SIDE, description="Window width; 0 = frame width.")
    height: int = Field(0, ge=0, le=MAX_FRAME_SIDE, description="Window height; 0 = frame height.")
    offset_x: NonNeg = Field(0, description="Window x.")
    offset_y: NonNeg = Field(0, description="Window y.")
    display_id: NonNeg = Field(0, description="Display (Jetson).")
    overlay_id: NonNeg = Field(0, description="Overlay plane (Jetson).")


class EncodedSink(SinkBase):
    codec: Annotated[
        Codec, BeforeValidator(coded(Codec, {1: Codec.H264, 2: Codec.H265, 3: Codec.MPEG4}))
    ] = Field(Codec.H264, description="1 H.264, 2 H.265, 3 MPEG-4.")
    enc_type: Annotated[
        EncoderType, BeforeValidator(coded(EncoderType, {0: EncoderType.HW, 1: EncoderType.SW}))
    ] = Field(EncoderType.HW, description="0 hardware (NVENC), 1 software encoder.")
    bitrate: int = Field(4_000_000, ge=1, description="Bits per second.")
    profile: NonNeg = Field(0, description="Encoder profile (H.264: 0 baseline, 2 main, 4 high).")
    iframeinterval: int = Field(30, ge=1, description="Frames between key frames.")


class FileSink(EncodedSink):
    """type=3: encode into a file."""

    type: Annotated[Literal[SinkKind.FILE], BeforeValidator(sink_kind)] = Field(
        description="3 or file."
    )
    container: Annotated[
        Container, BeforeValidator(coded(Container, {1: Container.MP4, 2: Container.MKV}))
    ] = Field(Container.MP4, description="1 MP4, 2 MKV.")
    output_file: Path = Field(json_schema_extra={"output": True}, description="Where to write.")


class RtspSink(EncodedSink):
    """type=4: serve the encoded stream over RTSP (rtsp://host:rtsp-port/ds-test)."""

    type: Annotated[Literal[SinkKind.RTSP], BeforeValidator(sink_kind)] = Field(
        description="4 or rtsp."
    )
    rtsp_port: Port = Field(8554, description="RTSP server port.")
    udp_port: Port = Field(5000, description="Port the encoder sends RTP to internally.")
    udp_buffer_size: NonNeg = Field(0, description="UDP socket buffer (bytes); 0 default.")

    @model_validator(mode="after")
    def _ports_differ(self) -> RtspSink:
        if self.rtsp_port == self.udp_port:
            problems = Problems()
            problems.add("udp_port", f"udp-port and rtsp-port are both {self.rtsp_port}")
            problems.raise_if_any()
        return self


class MsgBrokerSink(SinkBase):
    """type=6: convert metadata to messages (nvmsgconv) and publish them (nvmsgbroker)."""

    type: Annotated[Literal[SinkKind.MSGBROKER], BeforeValidator(sink_kind)] = Field(
        description="6 or msgbroker."
    )
    msg_conv_config: Path | None = Field(None, description="Sensor/place/analytics config.")
    msg_conv_payload_type: NonNeg = Field(0, description="0 full schema, 1 minimal, 257 custom.")
    msg_conv_msg2p_lib: Path | None = Field(None, description="Custom payload library.")
    msg_conv_comp_id: NonNeg | None = Field(None, description="nvmsgconv component id.")
    msg_conv_msg2p_new_api: bool = Field(False, description="Use the new payload API.")
    msg_conv_frame_interval: int = Field(30, ge=1, description="Frames between payloads.")
    debug_payload_dir: Path | None = Field(
        None, json_schema_extra={"output": True}, description="Dump payloads here."
    )
    multiple_payloads: bool = Field(False, description="Several payloads per frame.")
    msg_broker_proto_lib: Path = Field(description="Protocol adapter library (Kafka, Redis, ...).")
    msg_broker_conn_str: str | None = Field(None, description="host;port[;topic].")
    topic: str | None = Field(None, description="Topic messages go to.")
    msg_broker_config: Path | None = Field(None, description="Adapter config file.")
    msg_broker_comp_id: NonNeg | None = Field(None, description="nvmsgbroker component id.")
    disable_msgconv: bool = Field(False, description="Send metadata without converting it.")
    new_api: bool = Field(False, description="Use the new broker API.")


def _sink_tag(value: Any) -> str | None:
    raw = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    try:
        member = sink_kind(raw)
    except ValueError:
        return None
    return member.value if isinstance(member, SinkKind) else None


Sink = Annotated[
    Annotated[FakeSink, Tag(SinkKind.FAKE.value)]
    | Annotated[EglSink, Tag(SinkKind.EGL.value)]
    | Annotated[FileSink, Tag(SinkKind.FILE.value)]
    | Annotated[RtspSink, Tag(SinkKind.RTSP.value)]
    | Annotated[MsgBrokerSink, Tag(SinkKind.MSGBROKER.value)],
    Discriminator(
        _sink_tag,
        custom_error_type="sink_type",
        custom_error_message="expected sink type 1 (fake), 2 (egl), 3 (file), 4 (rtsp) "
        "or 6 (msgbroker)",
    ),
]
