"""Which service processes a pipeline needs, and the settings file each one gets.

Two shapes, chosen from the sources (or forced with `streammux`):

- **lossless** (every source is a file and file-loop is off; the default for such pipelines):
  ingest publishes with `every_frame` backpressure against the inference group (and, with an
  overlay, against the overlay's group on the last stage's metadata: the overlay reads the
  pixels last, so it bounds how far ingest may get ahead of it in the ring), and inference
  reads the frame streams itself, batching up to `batch-size` frames across streams. Every
  decoded frame reaches the sinks, as in a deepstream-app run over files. The muxer is left out
  because its output (a drop-oldest batch stream and a ring of `ring_batches` slots) has no
  backpressure: a muxer feeding a detector slower than the decoder would lose frames.
- **live** (cameras, RTSP, realtime lavfi, or file-loop): ingest (latest frame wins) →
  streammux → inference, as DeepStream runs live sources: a slow stage drops frames rather than
  falling behind real time.

Then the tracker (when `[tracker] enable=1`) and the overlay (when an OSD, tiler or non-fake
sink is enabled), each when its package is installed (`python -m heron.<service>` exists).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from heron.core.config.diagnostics import Diagnostic
from heron.core.config.models import Pipeline
from heron.core.config.pipeline_file import load_pipeline
from heron.core.config.sinks import FileSink, SinkKind
from heron.core.outputs import OutputKind, check_output
from heron.ingest.spec import PlannedSource, plan_sources
from heron.ingest.uri import MediaKind
from heron.run.options import RunOptions
from heron.run.redis_local import free_port
from heron.run.supervisor import ChildSpec

Topology = Literal["lossless", "live"]

# One replica per stage: whatever is still pending when it reads was left by its previous,
# crashed incarnation (a restart takes a few seconds), so it takes that back on its first read
# instead of after the bus's default 30 s — before ingest moves on and the frame stream's
# retention trims the entry.
RECLAIM = {"min_idle_ms": 1000, "reclaim_interval_ms": 1000}


@dataclass(frozen=True)
class ServicePlan:
    child: ChildSpec
    settings_file: Path
    metrics_port: int


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
    warnings: list[Diagnostic] = field(default_factory=list)  # the config's, for the terminal

    @property
    def children(self) -> list[ChildSpec]:
        return [s.child for s in self.services]

    @property
    def perf_interval_s(self) -> int:
        return self.pipeline.application.perf_measurement_interval_sec


def has_main(module: str) -> bool:
    """`python -m <module>` would run: the package and its __main__ exist."""
    try:
        return importlib.util.find_spec(f"{module}.__main__") is not None
    except ModuleNotFoundError:
        return False


def needs_overlay(pipeline: Pipeline) -> bool:
    sinks = [s for s in pipeline.sinks.values() if s.enable]
    drawing = pipeline.osd.enable or pipeline.tiled_display.enable
    return drawing or any(s.type is not SinkKind.FAKE for s in sinks)


def choose_topology(planned: list[PlannedSource], forced: bool | None) -> Topology:
    if forced is not None:
        return "live" if forced else "lossless"
    finite = all(not p.target.live and not p.spec.loop for p in planned)
    return "lossless" if finite else "live"


def plan_run(config: Path, run_dir: Path, options: RunOptions, redis_url: str) -> RunPlan:
    """Read the pipeline (errors name file and line) and write every service's settings."""
    config = config.resolve()
    pipeline, findings = load_pipeline(config)
    planned = plan_sources(pipeline)
    _check_recordings(config, pipeline, planned)
    stream_ids = [p.spec.stream_id for p in planned]
    topology = choose_topology(planned, options.streammux)
    run_dir.mkdir(parents=True, exist_ok=True)
    writer = _Writer(run_dir, options, redis_url)
    final, skipped = _final_stage(pipeline)
    with_overlay = needs_overlay(pipeline) and has_main("heron.overlay")
    ingest = _ingest(options, topology, final if with_overlay else None)
    services = [writer.service("ingest", "heron.ingest", ["-c", str(config), "--settings"], ingest)]
    if topology == "live":
        services.append(
            writer.service(
                "streammux",
                "heron.streammux",
                ["--config"],
                {"pipeline_config": str(config), "ring_batches": options.ring_batches},
            )
        )
    services.append(
        writer.service(
            "inference",
            "heron.inference",
            ["-c"],
            _inference(config, options, topology, stream_ids),
        )
    )
    if final == "tracker":
        tracker = {
            "pipeline_config": str(config),
            "consumer_name": "tracker-0",
            "consumer": RECLAIM,
        }
        services.append(writer.service("tracker", "heron.tracker", ["-c"], tracker))
    if needs_overlay(pipeline):
        if with_overlay:
            overlay = {
                "pipeline_config": str(config),
                "input_stage": final,
                "consumer_name": "overlay-0",
                "fps": _source_fps(planned),
                "encoder_preset": options.encoder_preset,
                "consumer": RECLAIM,
            }
            services.append(writer.service("overlay", "heron.overlay", ["-c"], overlay))
        else:
            skipped.append("overlay")
    return RunPlan(
        config, pipeline, options, stream_ids, topology, services, final, skipped,
        findings.warnings,
    )  # fmt: skip


def _check_recordings(config: Path, pipeline: Pipeline, planned: list[PlannedSource]) -> None:
    """Every enabled file sink can write where it is told, and never over what the run reads:
    found now, not when the overlay opens the file after the first frame."""
    inputs = [config, *(Path(p.target.url) for p in planned if p.target.kind is MediaKind.FILE)]
    for index, sink in sorted(pipeline.sinks.items()):
        if sink.enable and isinstance(sink, FileSink):
            check_output(
                sink.output_file, OutputKind.FILE, option=f"[sink{index}] output-file",
                inputs=inputs,
            )  # fmt: skip


def _final_stage(pipeline: Pipeline) -> tuple[str, list[str]]:
    """The stage whose metadata ends the chain, and the wanted stages not installed here."""
    if not pipeline.tracker.enable:
        return "inference", []
    return ("tracker", []) if has_main("heron.tracker") else ("inference", ["tracker"])


def _source_fps(planned: list[PlannedSource], default: float = 30.0) -> float:
    """The first source's frame rate (the rate RTSP announces): the camera's, or the file's."""
    spec, target = planned[0].spec, planned[0].target
    if spec.fps_n and spec.fps_d:
        return spec.fps_n / spec.fps_d
    if target.live:
        return default
    import av

    try:
        with av.open(target.url, format=target.format, options=target.options) as container:
            rate = container.streams.video[0].average_rate
    except (OSError, IndexError, ValueError, av.error.FFmpegError):
        return default
    # A file's average rate can be nonsense (a badly timestamped remux): keep it plausible.
    return float(rate) if rate and 1 <= float(rate) <= 240 else default


def _ingest(options: RunOptions, topology: Topology, overlay_input: str | None) -> dict[str, Any]:
    """`overlay_input`: the stage whose metadata the overlay reads, None without an overlay."""
    if topology == "live":
        return {"shm_slots": options.shm_slots, "backpressure": "latest_frame_wins"}
    settings: dict[str, Any] = {
        "shm_slots": options.shm_slots,
        "backpressure": "every_frame",
        "consumer_group": "inference",
        "max_lag": options.max_lag,
        # A frame's ref lives as long as its pixels: a reclaimed frame can still be read.
        "frame_stream_max_len": options.shm_slots,
    }
    if overlay_input is not None:
        # The overlay reads the pixels last, long after inference acked them: ingest must not
        # reuse a slot before the overlay is done with it. The margin of max_lag covers frames
        # an inference restart publishes twice (they count as finished early).
        settings["downstream"] = {
            "stage": overlay_input,
            "group": "overlay",
            "max_lag": options.shm_slots - options.max_lag,
        }
    return settings


def _inference(
    config: Path, options: RunOptions, topology: Topology, stream_ids: list[str]
) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "pipeline_config": str(config),
        "group": "inference",
        "consumer_name": "inference-0",
        "consumer": RECLAIM,
    }
    if topology == "lossless":
        settings |= {"input": "frames", "frame_streams": stream_ids}
    if options.backend == "triton":
        if not options.triton_model:
            raise ValueError("--backend triton needs --triton-model (the model's name in Triton)")
        settings["backend"] = {"kind": "triton", "model_name": options.triton_model}
        if options.triton_url is not None:  # else the inference service's own default
            settings["backend"]["url"] = options.triton_url
    else:
        settings["backend"] = {"kind": "onnxruntime", "intra_op_threads": options.intra_op_threads}
    return settings


class _Writer:
    def __init__(self, run_dir: Path, options: RunOptions, redis_url: str) -> None:
        self.run_dir = run_dir
        self.options = options
        self.redis_url = redis_url  # a secret: in the environment, never in a file

    def service(
        self, name: str, module: str, args: list[str], settings: dict[str, Any]
    ) -> ServicePlan:
        port = free_port()
        full = {
            "service_name": name,
            "pipeline": self.options.pipeline,
            "metrics": {"host": "127.0.0.1", "port": port},
            "log": {"level": self.options.log_level, "format": "json"},
            **settings,
        }
        path = self.run_dir / f"{name}.json"
        path.write_text(json.dumps(full, indent=2) + "\n", encoding="utf-8")
        child = ChildSpec(
            name=name,
            argv=[sys.executable, "-m", module, *args, str(path)],
            env={"PYTHONUNBUFFERED": "1", "HERON_REDIS_URL": self.redis_url},
            log_file=self.run_dir / f"{name}.log",
        )
        return ServicePlan(child, path, port)
