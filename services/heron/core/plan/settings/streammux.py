"""Streammux's settings: the service's own knobs here; the muxer's from the pipeline config.

The muxer itself (batch-size, batched-push-timeout, width, height, enable-padding,
buffer-pool-size) is configured where DeepStream users already configure it, the pipeline
config's [streammux] group, read with heron.core.config's loaders. Nothing here repeats those
settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from heron.core.bus.settings import BusSettings
from heron.core.config.diagnostics import ConfigError
from heron.core.config.models import Streammux
from heron.core.config.pipeline_file import load_pipeline
from heron.core.framestore.jpeg import DEFAULT_QUALITY
from heron.core.runtime import BusConsumerSettings

DYNAMIC_RING_SOURCES = 16


class StreammuxSettings(BusConsumerSettings):
    service_name: str = "streammux"
    group: str = "streammux"  # on the frame and event streams
    pipeline_config: Path | None = Field(
        None,
        description="deepstream-app config (.txt) or pipeline YAML whose [streammux] group sets "
        "batch-size, batched-push-timeout, width, height, enable-padding, buffer-pool-size; "
        "unset = [streammux] defaults with one batch slot per live source.",
    )
    output_location: Literal["shm", "jpeg"] = Field(
        "shm", description="Where scaled frames go: this process's ring, or inline JPEG."
    )
    jpeg_quality: int = Field(DEFAULT_QUALITY, ge=1, le=100, description="For output 'jpeg'.")
    ring_batches: int | None = Field(
        None,
        ge=1,
        description="Batches the output ring holds before slots are reused; unset = "
        "[streammux] buffer-pool-size. Raise it when consumers are slow.",
    )
    max_pending_per_source: int = Field(
        8, ge=1, description="Frames held per source before its reader pauses (bounds memory)."
    )
    # Its own bound: each source's reader thread blocks this long, and stopping waits for them.
    read_block_ms: int = Field(
        100, ge=1, le=5000, description="Longest wait of one read of a frame stream."
    )
    stream_match: str = Field(
        "*",
        description="Glob on stream ids: only matching frame streams are batched (several "
        "pipelines sharing one Redis each take their own cameras, e.g. 'lobby-*').",
    )
    discovery_interval_s: float = Field(
        0.5, gt=0, le=60, description="How often frame streams are scanned for new sources."
    )

    def bus_settings(self) -> BusSettings:
        """The batch stream keeps no more entries than the output ring holds batches: an older
        entry names pixels a newer batch has overwritten, and a consumer that fell behind would
        otherwise work through a backlog of dead references (in a live pipeline on a busy
        machine, all it ever read) instead of the batches still there. Trimmed entries are
        counted as drops (heron_bus_dropped_unread_total)."""
        settings = super().bus_settings()
        if self.output_location != "shm":
            return settings  # inline JPEG: every entry carries its pixels
        config = load_mux_config(self.pipeline_config)
        batches = self.ring_batches or config.streammux.buffer_pool_size
        kept = min(settings.retention.drop_oldest_max_len, batches)
        retention = settings.retention.model_copy(update={"drop_oldest_max_len": kept})
        return settings.model_copy(update={"retention": retention})

    @field_validator("pipeline_config")
    @classmethod
    def _loads(cls, value: Path | None) -> Path | None:
        """Bad pipeline configs are bad settings: one error line naming file:line, exit 2."""
        if value is None:
            return None
        if not value.is_file():
            raise ValueError(f"expected an existing pipeline config file, got {str(value)!r}")
        try:
            load_mux_config(value)
        except ConfigError as e:
            raise ValueError(f"the pipeline config does not load: {e}") from None
        return value


@dataclass(frozen=True)
class MuxConfig:
    """What the muxer runs with: the [streammux] group and the number of configured streams."""

    streammux: Streammux
    configured_streams: int  # 0 when no pipeline config was given

    @property
    def batch_size(self) -> int | None:
        """batch-size, else one slot per configured stream, else None (one per live source)."""
        if self.streammux.batch_size is not None:
            return self.streammux.batch_size
        return self.configured_streams or None

    def ring_slots(self, ring_batches: int | None) -> int:
        """Output ring size: `ring_batches` (or buffer-pool-size) batches of the batch size;
        with a batch size that follows the live sources, batches of DYNAMIC_RING_SOURCES."""
        batches = ring_batches or self.streammux.buffer_pool_size
        return batches * (self.batch_size or DYNAMIC_RING_SOURCES)


def load_mux_config(path: Path | None) -> MuxConfig:
    """Read the pipeline config (ConfigError with file:line findings when it is bad)."""
    if path is None:
        return MuxConfig(Streammux(), 0)
    pipeline, _ = load_pipeline(path)
    return MuxConfig(pipeline.streammux, pipeline.stream_count)
