"""Settings of the ingest service (the runtime's base settings plus ingest's own).

The pipeline config (deepstream-app txt or YAML) says *which* sources to open; these settings say
*how* this process runs them: where pixels go, what happens when consumers fall behind, how fast
a dead camera is retried.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from heron.core.bus import BusSettings
from heron.core.runtime import BusClientSettings


class FrameLocation(StrEnum):
    SHM = "shm"  # a shared-memory ring on this host (consumers on the same host)
    JPEG = "jpeg"  # inline JPEG in the frame reference (consumers anywhere)


class Backpressure(StrEnum):
    LATEST_FRAME_WINS = "latest_frame_wins"  # the frame stream is trimmed; drops are counted
    EVERY_FRAME = "every_frame"  # ingest waits until the consumer group catches up


class DecoderKind(StrEnum):
    CPU = "cpu"  # PyAV (FFmpeg) on the CPU
    NVDEC = "nvdec"  # PyNvVideoCodec on an NVIDIA GPU


class ReconnectSettings(BaseModel):
    """How a live source that went away is retried: exponential backoff with full jitter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    initial_s: float = Field(0.5, gt=0, description="Upper bound of the first wait.")
    max_s: float = Field(30.0, gt=0, description="Longest wait between two tries.")
    read_timeout_s: float = Field(
        10.0,
        gt=0,
        description="A live source silent this long counts as stalled and is reconnected; "
        "a source's rtsp-reconnect-interval-sec, when set, wins.",
    )

    @model_validator(mode="after")
    def _max_not_below_initial(self) -> ReconnectSettings:
        if self.max_s < self.initial_s:
            raise ValueError(
                f"reconnect.max_s must be >= reconnect.initial_s ({self.initial_s}), "
                f"got {self.max_s}"
            )
        return self


class DownstreamSettings(BaseModel):
    """every_frame: a later reader of the pixels that ingest must not outrun (see backpressure)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: str = Field(
        min_length=1, description="Stage whose metadata stream that reader consumes (tracker...)."
    )
    group: str = Field("overlay", min_length=1, description="The reader's consumer group there.")
    max_lag: int = Field(
        ge=1,
        description="Most frames published and not yet finished by that group; below shm_slots.",
    )


class IngestSettings(BusClientSettings):
    service_name: str = "ingest"
    pipeline_config: Path | None = Field(
        None,
        description="deepstream-app txt or pipeline YAML; `python -m heron.ingest -c FILE` "
        "sets it too.",
    )
    frame_location: FrameLocation = Field(
        FrameLocation.SHM, description="shm (same host, default) or jpeg (inline, any host)."
    )
    jpeg_quality: int = Field(90, ge=1, le=100, description="JPEG quality of inline frames.")
    shm_slots: int = Field(
        32, ge=2, description="Frames each stream's shared-memory ring holds before reuse."
    )
    backpressure: Backpressure = Field(
        Backpressure.LATEST_FRAME_WINS, description="latest_frame_wins or every_frame."
    )
    consumer_group: str = Field(
        "streammux", description="every_frame: the group on the frame streams ingest waits for."
    )
    max_lag: int = Field(
        8,
        ge=1,
        description="every_frame: most frames the group may have unread or unacknowledged "
        "before ingest waits.",
    )
    downstream: DownstreamSettings | None = Field(
        None,
        description="every_frame: also wait while this later pixel reader (the overlay) is "
        "max_lag or more frames behind ingest.",
    )
    frame_stream_max_len: int = Field(
        16, ge=1, description="Entries a frame stream keeps (latest_frame_wins trims older ones)."
    )
    decoder: DecoderKind = Field(DecoderKind.CPU, description="cpu (PyAV) or nvdec.")
    decode_threads: int = Field(0, ge=0, description="Decoder threads per stream; 0 = FFmpeg's.")
    reconnect: ReconnectSettings = Field(default_factory=ReconnectSettings)
    redis_give_up_after_s: float = Field(
        60.0,
        gt=0,
        description="Redis unreachable this long ends the process (its supervisor restarts it).",
    )
    exit_when_done: bool = Field(
        False, description="Stop the service once every source has ended (batch jobs, tests)."
    )
    report_interval_s: float = Field(
        1.0,
        gt=0,
        description="How often ingest publishes its SourcesReport (every source's state) for "
        "the control service; also right after every AddSource/RemoveSource.",
    )
    flush_timeout_s: float = Field(
        10.0,
        gt=0,
        description="After RemoveSource: longest wait for the frame stream's consumer groups to "
        "finish the removed source's frames before its shared-memory ring is unlinked.",
    )

    @model_validator(mode="after")
    def _bounds_fit(self) -> IngestSettings:
        if self.backpressure is Backpressure.EVERY_FRAME:
            # Every frame must stay in the stream (and its ring slot) until it is acknowledged.
            if self.frame_stream_max_len <= self.max_lag:
                raise ValueError(
                    f"every_frame needs frame_stream_max_len > max_lag ({self.max_lag}), "
                    f"got {self.frame_stream_max_len}"
                )
            if self.frame_location is FrameLocation.SHM and self.shm_slots <= self.max_lag:
                raise ValueError(
                    f"every_frame with shm needs shm_slots > max_lag ({self.max_lag}), "
                    f"got {self.shm_slots}"
                )
            down = self.downstream
            if down and self.frame_location is FrameLocation.SHM and self.shm_slots <= down.max_lag:
                raise ValueError(
                    f"every_frame with shm needs shm_slots > downstream.max_lag ({down.max_lag}), "
                    f"got {self.shm_slots}"
                )
        elif self.downstream is not None:
            raise ValueError(
                "downstream: only every_frame waits for downstream readers; got backpressure "
                f"{self.backpressure.value}"
            )
        return self

    def bus_settings(self) -> BusSettings:
        # Ingest's own names for the two bounds that matter to it win over the shared ones.
        return BusSettings(
            url=self.redis_url,
            backoff=self.backoff.model_copy(update={"give_up_after_s": self.redis_give_up_after_s}),
            retention=self.retention.model_copy(
                update={"drop_oldest_max_len": self.frame_stream_max_len}
            ),
        )
