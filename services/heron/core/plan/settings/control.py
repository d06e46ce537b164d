"""Settings of the control service (`python -m heron.control -c settings.yaml`): the gRPC API
of a running pipeline (docs/grpc.md).

It follows the metadata stream of the pipeline's last stage (`stage`) for Detections.Subscribe.
Environment variables: `HERON_STAGE`, `HERON_GRPC__LISTEN=0.0.0.0:50051`,
`HERON_GRPC__TOKEN`, `HERON_SUBSCRIBE__MAX_BEHIND`, ...
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from heron.core import streams
from heron.core.grpc.settings import GrpcServerSettings
from heron.core.runtime import BusClientSettings


class SubscribeSettings(BaseModel):
    """How Detections.Subscribe follows the stream for each subscriber."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    read_count: int = Field(64, ge=1, le=10_000, description="Entries per read of the stream.")
    block_ms: int = Field(
        500,
        ge=1,
        le=5000,
        description="Longest wait of one read when nothing is new; a stop, a cancelled call or "
        "a deadline is noticed within it.",
    )
    max_behind: int = Field(
        100_000,
        ge=1,
        description="A subscriber further behind the stream's newest frame than this many "
        "frames (a slow client, or one resuming from an old position) skips to the newest and "
        "is told with a Gap, as when the stream was trimmed past it. The default is the "
        "metadata streams' own bound (retention.keep_unread_max_len): resuming works across "
        "the whole retention window; lower it for subscribers that want recent frames only.",
    )
    max_subscribers: int = Field(
        64,
        ge=1,
        le=1024,
        description="Subscriptions served at once (each holds a server thread); past it, "
        "RESOURCE_EXHAUSTED.",
    )
    fanout_entries: int = Field(
        4096,
        ge=0,
        le=1_000_000,
        description="The newest frames one shared reader of the stream keeps, decoded, for "
        "every subscription to take from: the stream is read and decoded once, not once per "
        "subscriber. A subscription further behind (resuming from an old position, "
        "from_oldest, a slow client) reads the stream itself until it is back among them. "
        "0: every subscription reads the stream itself.",
    )


class PipelineApiSettings(BaseModel):
    """How the Pipeline service reaches the stages and judges what they report."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command_timeout_s: float = Field(
        5.0,
        gt=0,
        le=60,
        description="Longest wait for the stage that applies AddSource, RemoveSource or "
        "SetParameters (or the call's deadline, when sooner); past it, UNAVAILABLE and "
        "nothing changed.",
    )
    model_load_timeout_s: float = Field(
        120.0,
        gt=0,
        le=600,
        description="Longest wait for every inference instance to load the versions "
        "SetModelVersions names and switch to them (or the call's deadline, when sooner); past "
        "it, UNAVAILABLE, and an instance still loading drops what it loaded and changes "
        "nothing.",
    )
    report_stale_s: float = Field(
        10.0,
        gt=0,
        description="Ingest's newest sources report older than this: ListSources and "
        "GetSource answer UNAVAILABLE (ingest is not running).",
    )
    heartbeat_stale_s: float = Field(
        10.0,
        gt=0,
        description="A service whose newest heartbeat is older than this shows as not "
        "serving in GetStatus (several of its status_interval_s).",
    )
    heartbeat_forget_s: float = Field(
        60.0, gt=0, description="... older than this: left out of GetStatus."
    )
    rate_window_s: float = Field(
        5.0, gt=0, le=300, description="GetStatus's fps per stream: frames over this window."
    )
    media_roots: tuple[Path, ...] = Field(
        (),
        description="Directories whose files AddSource may start as sources (file:// or a "
        "path), checked after following symlinks; '..' is refused. Empty: no file source may "
        "be added at run time (the pipeline config's own file sources are not affected). "
        "Paths are resolved on the control service's file system, so mount the media there at "
        "the same path as in ingest. Env: HERON_PIPELINE_API__MEDIA_ROOTS='[\"/media\"]'.",
    )

    @field_validator("media_roots")
    @classmethod
    def _absolute_roots(cls, roots: tuple[Path, ...]) -> tuple[Path, ...]:
        for i, root in enumerate(roots):
            if not root.is_absolute():
                raise ValueError(
                    f"media_roots[{i}]: expected an absolute directory, got {str(root)!r}"
                )
        return roots


class ControlSettings(BusClientSettings):
    """The control service: which stage's detections it serves, and its gRPC server."""

    service_name: str = "control"
    stage: str = Field(
        "tracker",
        description="The pipeline's last stage (inference or tracker): whose metadata stream "
        "Subscribe follows.",
    )
    grpc: GrpcServerSettings = Field(
        default_factory=GrpcServerSettings, description="The gRPC server (listen, TLS, token)."
    )
    subscribe: SubscribeSettings = Field(default_factory=SubscribeSettings)
    pipeline_api: PipelineApiSettings = Field(default_factory=PipelineApiSettings)
    health_interval_s: float = Field(
        1.0,
        gt=0,
        le=60,
        description="How often Redis is pinged for the health of heron.v1.Pipeline and "
        "heron.v1.Detections.",
    )

    @field_validator("stage")
    @classmethod
    def _stage_id(cls, value: str) -> str:
        streams.metadata(value)  # raises ValueError naming what a stage id may hold
        return value
