"""Settings of the overlay service (`python -m heron.overlay -c settings.yaml`).

What to draw and where to send it comes from the pipeline config ([osd], [tiled-display],
[sinkN], [message-broker], [primary-gie] colours); these settings say how the service reads the
bus and what the config cannot: frame rate, encoder speed, RTSP listen address.
Environment variables: `HERON_PIPELINE_CONFIG`, `HERON_FPS`, ...
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from heron.core.config.diagnostics import ConfigError
from heron.core.config.models import Pipeline
from heron.core.config.pipeline_file import load_pipeline
from heron.core.runtime import BusConsumerSettings


class OverlaySettings(BusConsumerSettings):
    service_name: str = "overlay"
    group: str = "overlay"
    pipeline_config: Path = Field(
        description="deepstream-app config (.txt) or pipeline YAML: [osd], [tiled-display], "
        "[sinkN], [message-broker] and the primary GIE's box colours."
    )
    input_stage: Literal["auto", "tracker", "inference"] = Field(
        "auto",
        description="Metadata stream to read: auto = tracker when [tracker] enable=1, else "
        "inference.",
    )
    read_count: int = Field(
        0,
        ge=0,
        description="Metadata messages per read (one composite per read); 0 = one per enabled "
        "source.",
    )
    fps: float = Field(
        30.0,
        gt=0,
        le=240,
        description="Nominal frame rate: announced by RTSP, and spacing of file frames when "
        "sources carry no timestamps.",
    )
    encoder_preset: str = Field(
        "veryfast", min_length=1, description="x264/x265 preset of the file sink."
    )
    rtsp_address: str = Field(
        "127.0.0.1", description="Address the RTSP sink listens on; 0.0.0.0 in a pod."
    )

    def metadata_stage(self, pipeline: Pipeline) -> str:
        """The stage whose metadata the overlay reads."""
        if self.input_stage != "auto":
            return self.input_stage
        return "tracker" if pipeline.tracker.enable else "inference"

    @field_validator("pipeline_config")
    @classmethod
    def _loads(cls, value: Path) -> Path:
        """A bad pipeline config is a bad setting: one error naming file:line, exit 2."""
        if not value.is_file():
            raise ValueError(f"expected an existing pipeline config file, got {str(value)!r}")
        try:
            load_pipeline(value)
        except ConfigError as e:
            raise ValueError(str(e)) from None
        return value
