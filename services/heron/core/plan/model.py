"""The plan of one pipeline: which services run, each with its own settings model.

A plan serializes to JSON (or YAML) and validates back to the same typed object:
`PipelinePlan.model_validate_json(plan.model_dump_json()) == plan`. Each service's settings are
written as the planner decided them (the fields it set), so a reader sees what this pipeline
needs and every other field keeps its one default, the service's; the Redis URL is never part
of a plan (a secret: each runner hands it to the services in their environment).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializationInfo, field_serializer

from heron.core.config.diagnostics import Diagnostic
from heron.core.plan.settings.control import ControlSettings
from heron.core.plan.settings.inference import InferenceSettings
from heron.core.plan.settings.ingest import IngestSettings
from heron.core.plan.settings.overlay import OverlaySettings
from heron.core.plan.settings.streammux import StreammuxSettings
from heron.core.plan.settings.tracker import TrackerSettings
from heron.core.runtime import ServiceSettings

Topology = Literal["lossless", "live"]
Stage = Literal["inference", "tracker"]  # the stages that publish detections' metadata

PlannedSettings = (
    IngestSettings
    | StreammuxSettings
    | InferenceSettings
    | TrackerSettings
    | OverlaySettings
    | ControlSettings
)


def decided(settings: ServiceSettings, mode: str = "json") -> dict[str, Any]:
    """The fields set when `settings` was made, without the Redis URL.

    exclude_unset, not exclude_defaults: a discriminator equal to its default (a backend's
    `kind`) must stay, or the union cannot tell which backend the settings name.
    """
    return settings.model_dump(mode=mode, exclude_unset=True, exclude={"redis_url"})


class _Planned(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # In a subclass's `settings`: a full dump would carry the Redis URL (masked, so it would
    # not even validate back) and every default of the service (two homes for each).
    @field_serializer("settings", check_fields=False)
    def _as_decided(self, settings: ServiceSettings, info: SerializationInfo) -> dict[str, Any]:
        return decided(settings, info.mode)


class PlannedIngest(_Planned):
    service: Literal["ingest"] = "ingest"
    module: Literal["heron.ingest"] = "heron.ingest"
    settings: IngestSettings


class PlannedStreammux(_Planned):
    service: Literal["streammux"] = "streammux"
    module: Literal["heron.streammux"] = "heron.streammux"
    settings: StreammuxSettings


class PlannedInference(_Planned):
    service: Literal["inference"] = "inference"
    module: Literal["heron.inference"] = "heron.inference"
    settings: InferenceSettings


class PlannedTracker(_Planned):
    service: Literal["tracker"] = "tracker"
    module: Literal["heron.tracker"] = "heron.tracker"
    settings: TrackerSettings


class PlannedOverlay(_Planned):
    service: Literal["overlay"] = "overlay"
    module: Literal["heron.overlay"] = "heron.overlay"
    settings: OverlaySettings


class PlannedControl(_Planned):
    service: Literal["control"] = "control"
    module: Literal["heron.control"] = "heron.control"
    settings: ControlSettings


PlannedService = Annotated[
    PlannedIngest
    | PlannedStreammux
    | PlannedInference
    | PlannedTracker
    | PlannedOverlay
    | PlannedControl,
    Field(discriminator="service"),
]


class PipelinePlan(BaseModel):
    """The services one pipeline config needs, in start order, with their settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    config: Path = Field(description="The pipeline config, absolute.")
    topology: Topology = Field(
        description="lossless: inference reads the frame streams, ingest waits for it; live: "
        "ingest (latest frame wins) → streammux → inference."
    )
    streams: list[str] = Field(description="Stream ids of the sources, in deepstream-app order.")
    services: list[PlannedService] = Field(description="In start order.")
    final_stage: Stage = Field(description="Whose metadata stream ends the chain.")
    skipped: list[str] = Field(
        default_factory=list,
        description="Services the config wants that are not installed where it was planned.",
    )
    warnings: list[Diagnostic] = Field(
        default_factory=list, description="The pipeline config's warnings, file:line each."
    )

    def service(self, name: str) -> PlannedService | None:
        """The planned service of that name, None when the plan has none."""
        return next((s for s in self.services if s.service == name), None)
