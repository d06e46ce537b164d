"""The pipeline's plan (heron.core.plan) made into processes: each service's settings file,
its metrics port and its command line.

What a pipeline runs, and with which settings, is decided once for every runner by
`heron.core.plan.planner.plan_pipeline`; what only a local run needs is added here: a free
metrics port per service on the loopback, JSON logs the supervisor reads, the settings file each
child is started with, and the Redis URL in the child's environment (a secret: never in a file).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from heron.core.config.diagnostics import Diagnostic
from heron.core.config.models import Pipeline
from heron.core.config.pipeline_file import load_pipeline
from heron.core.grpc.settings import GrpcServerSettings, split_listen
from heron.core.plan.frame_rate import probe_frame_rate
from heron.core.plan.model import (
    PipelinePlan,
    PlannedService,
    PlannedSettings,
    Topology,
    decided,
)
from heron.core.plan.planner import has_main, plan_loaded
from heron.core.plan.settings.control import ControlSettings
from heron.core.plan.settings.inference import InferenceSettings
from heron.run.options import RunOptions
from heron.run.redis_local import free_port
from heron.run.supervisor import ChildSpec

# has_main: what `heron run` starts is what is installed here; its callers ask it here too.
__all__ = ["RunPlan", "ServicePlan", "grpc_apis", "has_main", "plan_run"]


@dataclass(frozen=True)
class ServicePlan:
    child: ChildSpec
    settings_file: Path
    metrics_port: int
    # What the child loads from `settings_file` (the Redis URL aside: it comes from the
    # environment, so here it keeps its default): a runner may start `module` in-process with it.
    settings: PlannedSettings
    module: str  # e.g. "heron.inference"


@dataclass(frozen=True)
class RunPlan:
    config: Path
    pipeline: Pipeline
    options: RunOptions
    streams: list[str]
    topology: Topology
    services: list[ServicePlan]
    final_stage: str  # whose metadata stream the run watches
    skipped: list[str]  # services the config wants that are not installed here
    plan: PipelinePlan  # what every runner of this pipeline shares
    warnings: list[Diagnostic] = field(default_factory=list)  # the config's, for the terminal

    @property
    def children(self) -> list[ChildSpec]:
        return [s.child for s in self.services]

    @property
    def perf_interval_s(self) -> int:
        return self.pipeline.application.perf_measurement_interval_sec


def plan_run(config: Path, run_dir: Path, options: RunOptions, redis_url: str | None) -> RunPlan:
    """Read the pipeline (errors name file and line) and write every service's settings.
    `redis_url`: what the processes connect to; None when the stages run in this process."""
    config = config.resolve()
    pipeline, findings = load_pipeline(config)
    # What is installed here is what runs here; the file's own rate goes to the overlay.
    plan = plan_loaded(
        config, pipeline, findings.warnings, options,
        installed=has_main, frame_rate=probe_frame_rate,
    )  # fmt: skip
    run_dir.mkdir(parents=True, exist_ok=True)
    services = [_service(planned, config, run_dir, redis_url) for planned in plan.services]
    return RunPlan(
        config=config,
        pipeline=pipeline,
        options=options,
        streams=plan.streams,
        topology=plan.topology,
        services=services,
        final_stage=plan.final_stage,
        skipped=plan.skipped,
        plan=plan,
        warnings=plan.warnings,
    )


def _service(
    planned: PlannedService, config: Path, run_dir: Path, redis_url: str | None
) -> ServicePlan:
    name = planned.service
    port = free_port()
    ours = decided(planned.settings)
    ours |= {
        "service_name": name,
        "metrics": {"host": "127.0.0.1", "port": port},
        "log": {**ours.get("log", {}), "format": "json"},  # the supervisor reads JSON lines
    }
    if isinstance(planned.settings, ControlSettings | InferenceSettings):
        listen = _free_if_zero(planned.settings.grpc)
        if listen is not None:
            ours["grpc"] = {**ours.get("grpc", {}), "listen": listen}
    settings = type(planned.settings).model_validate(ours)
    path = run_dir / f"{name}.json"
    path.write_text(json.dumps(decided(settings), indent=2) + "\n", encoding="utf-8")
    child = ChildSpec(
        name=name,
        argv=[sys.executable, "-m", planned.module, *_args(name, config), str(path)],
        env={"PYTHONUNBUFFERED": "1"} | ({"HERON_REDIS_URL": redis_url} if redis_url else {}),
        log_file=run_dir / f"{name}.log",
        ready_url=f"http://127.0.0.1:{port}/readyz",  # the supervisor's "ever ready" rule
    )
    return ServicePlan(child, path, port, settings, planned.module)


def _free_if_zero(settings: GrpcServerSettings | None) -> str | None:
    """Port 0 asks for a free port: chosen here, so the run can print where to connect."""
    if settings is None:
        return None
    host, port = split_listen(settings.listen)
    return settings.listen if port else f"{host}:{free_port()}"


def grpc_apis(plan: RunPlan) -> list[str]:
    """Where the run's gRPC APIs listen, as `HOST:PORT (Service)`."""
    apis = []
    for service in plan.services:
        settings = service.settings
        if isinstance(settings, ControlSettings):
            apis.append(f"{settings.grpc.listen} (Pipeline, Detections)")
        elif isinstance(settings, InferenceSettings) and settings.grpc is not None:
            apis.append(f"{settings.grpc.listen} (Detector)")
    return apis


def _args(service: str, config: Path) -> list[str]:
    """How the service's `python -m` takes its files; the settings file comes last."""
    if service == "ingest":
        return ["-c", str(config), "--settings"]  # ingest opens the config's sources itself
    return ["--config"] if service == "streammux" else ["-c"]
