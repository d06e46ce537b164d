"""What the tracker service takes from the pipeline config: [tracker] and the sources' stream
ids (a frame's pixel size and the muxer's scaling come with its FrameRef)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from heron.core.bus.admission import KnownStreams
from heron.core.config.diagnostics import ConfigError, Diagnostics
from heron.core.config.models import Pipeline
from heron.tracker.factory import TrackerSpec, tracker_spec


@dataclass(frozen=True)
class TrackerSetup:
    spec: TrackerSpec
    batch_process: bool  # enable-batch-process
    reset_mode: int  # tracking-id-reset-mode
    streams: KnownStreams  # the sources' stream ids: metadata of any other stream is refused


def tracker_setup(pipeline: Pipeline, source: Path) -> TrackerSetup:
    group = pipeline.tracker
    if not group.enable:
        diags = Diagnostics()
        diags.error(
            source,
            0,
            "[tracker] is missing or not enabled (enable=1); without it the overlay reads the "
            "inference metadata and no tracker service should run",
            "tracker.enable",
        )
        raise ConfigError(diags.items)
    return TrackerSetup(
        spec=tracker_spec(group, source),
        batch_process=group.enable_batch_process,
        reset_mode=group.tracking_id_reset_mode,
        streams=KnownStreams.of(pipeline),
    )
