"""Settings of the tracker service (`python -m heron.tracker -c settings.yaml`).

Which tracker runs, and how, comes from the pipeline config's [tracker] group and its
ll-config-file; these settings say how the service reads and writes the bus. Environment
variables: `HERON_PIPELINE_CONFIG`, `HERON_PIPELINE`, `HERON_READ_COUNT`, ...
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from heron.core.bus.admission import AdmissionSettings
from heron.core.runtime import BusConsumerSettings


class TrackerSettings(BusConsumerSettings):
    """`consumer_name`: run one replica per pipeline, a stream's tracks live in one process."""

    service_name: str = "tracker"
    group: str = "tracker"
    pipeline_config: Path = Field(
        description="deepstream-app config (.txt) or pipeline YAML with an enabled [tracker]."
    )
    read_count: int = Field(
        16,
        ge=1,
        le=1024,
        description="Metadata messages per step when enable-batch-process=1 (else 1).",
    )
    eos_grace_s: float = Field(
        10.0,
        gt=0,
        description="After a stream's EOS event, how long to wait for its last frames' metadata "
        "before its tracks are dropped anyway.",
    )
    retry_s: float = Field(0.2, gt=0, description="Wait before retrying a blocked publish.")
    admission: AdmissionSettings = Field(
        default_factory=AdmissionSettings,
        description="When a frame number is out of line: from the future (dead-lettered), "
        "stale (passed on untracked), or a stream that moved (followed).",
    )
