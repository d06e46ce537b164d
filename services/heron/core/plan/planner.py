"""Which services a pipeline needs, and the settings each one gets.

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
Last, the control service (the gRPC API: Detections.Subscribe follows the last stage's
metadata) whenever it is installed: it holds no consumer group, so it never slows the chain.

Planning reads the config, the files it names and (through `frame_rate`) a file source's
header; it writes nothing, opens no port and starts nothing: a runner does that with the plan.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

from heron.core.config.diagnostics import ConfigError, Diagnostic, Severity
from heron.core.config.gie import engine_not_run
from heron.core.config.models import Pipeline
from heron.core.config.nvinfer_models import MODEL_SOURCES
from heron.core.config.pipeline_file import load_pipeline
from heron.core.config.sinks import FileSink, SinkKind
from heron.core.media_uri import MediaKind, MediaTarget
from heron.core.outputs import OutputKind, check_output
from heron.core.plan.frame_rate import probe_frame_rate
from heron.core.plan.model import (
    PipelinePlan,
    PlannedControl,
    PlannedInference,
    PlannedIngest,
    PlannedOverlay,
    PlannedService,
    PlannedStreammux,
    PlannedTracker,
    Stage,
    Topology,
)
from heron.core.plan.options import PlanOptions
from heron.core.plan.settings.control import ControlSettings
from heron.core.plan.settings.inference import InferenceSettings
from heron.core.plan.settings.ingest import IngestSettings
from heron.core.plan.settings.overlay import OverlaySettings
from heron.core.plan.settings.streammux import StreammuxSettings
from heron.core.plan.settings.tracker import TrackerSettings
from heron.core.plan.sources import PlannedSource, plan_sources

Installed = Callable[[str], bool]  # "python -m <module>" would run here
FrameRate = Callable[[MediaTarget], float | None]  # a file's frame rate; None: unknown

# One replica per stage: whatever is still pending when it reads was left by its previous,
# crashed incarnation (a restart takes a few seconds), so it takes that back on its first read
# instead of after the bus's default 30 s — before ingest moves on and the frame stream's
# retention trims the entry.
RECLAIM = {"min_idle_ms": 1000, "reclaim_interval_ms": 1000}
# The overlay leaves a frame whose ring died with a killed ingest pending until the restarted
# ingest has published it again (heron.ingest.resume); each reclaim of it is a delivery, so
# the poison limit is its wait: ~30 s covers an ingest killed again while publishing again.
OVERLAY_RECLAIM = RECLAIM | {"max_deliveries": 30}


def has_main(module: str) -> bool:
    """`python -m <module>` would run: the package and its __main__ exist.

    By name, at run time: the core depends on no service, it only asks whether one is here
    (finding `<module>.__main__` imports the package itself, so missing extras count as absent).
    """
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


def plan_pipeline(
    config: Path,
    options: PlanOptions,
    *,
    installed: Installed = has_main,
    frame_rate: FrameRate = probe_frame_rate,
) -> PipelinePlan:
    """Read the pipeline (errors name file and line) and plan its services.

    `installed` says which services can run (a chart, whose images hold them all, answers
    True); `frame_rate` reads a file source's rate (see heron.core.plan.frame_rate).
    """
    config = config.resolve()
    pipeline, findings = load_pipeline(config)
    return plan_loaded(
        config, pipeline, findings.warnings, options, installed=installed, frame_rate=frame_rate
    )


def plan_loaded(
    config: Path,
    pipeline: Pipeline,
    warnings: list[Diagnostic],
    options: PlanOptions,
    *,
    installed: Installed = has_main,
    frame_rate: FrameRate = probe_frame_rate,
) -> PipelinePlan:
    """`plan_pipeline` for a pipeline already loaded from `config` (absolute)."""
    planned = plan_sources(pipeline)
    _check_recordings(config, pipeline, planned)
    stream_ids = [p.spec.stream_id for p in planned]
    topology = choose_topology(planned, options.streammux)
    final, skipped = _final_stage(pipeline, installed)
    with_overlay = needs_overlay(pipeline) and installed("heron.overlay")
    common: dict[str, Any] = {
        "pipeline_config": str(config),
        "pipeline": options.pipeline,
        "log": {"level": options.log_level},
    }
    ingest = _ingest(options, topology, final if with_overlay else None)
    services: list[PlannedService] = [
        PlannedIngest(settings=IngestSettings.model_validate(common | ingest))
    ]
    if topology == "live":
        muxer = common | {"ring_batches": options.ring_batches}
        services.append(PlannedStreammux(settings=StreammuxSettings.model_validate(muxer)))
    if options.backend == "onnxruntime":
        _check_onnx_model(pipeline, warnings)
    inference = common | _inference(options, topology, stream_ids)
    services.append(PlannedInference(settings=InferenceSettings.model_validate(inference)))
    if final == "tracker":
        tracker = common | {"consumer_name": "tracker-0", "consumer": RECLAIM}
        services.append(PlannedTracker(settings=TrackerSettings.model_validate(tracker)))
    if needs_overlay(pipeline):
        if with_overlay:
            overlay = common | _overlay(options, final, _source_fps(planned, frame_rate))
            services.append(PlannedOverlay(settings=OverlaySettings.model_validate(overlay)))
        else:
            skipped.append("overlay")
    if installed("heron.control"):
        control = _control(options, final)
        services.append(PlannedControl(settings=ControlSettings.model_validate(control)))
    return PipelinePlan(
        config=config,
        topology=topology,
        streams=stream_ids,
        services=services,
        final_stage=final,
        skipped=skipped,
        warnings=warnings,
    )


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


def _check_onnx_model(pipeline: Pipeline, warnings: list[Diagnostic]) -> None:
    """ONNX Runtime runs an onnx-file only: a detector given as a TensorRT engine, an .etlt,
    UFF or Caffe model is refused now, naming where, rather than by the inference service once
    every service has started. `config check` knows no backend and only warns: Triton can
    serve such a model."""
    gie = pipeline.primary_gie
    if gie is None or not gie.enable or gie.nvinfer is None:
        return
    prop = gie.nvinfer.property
    if prop.onnx_file is not None:
        return
    hint = "; `heron export` writes that ONNX model from a checkpoint (docs/training.md)"
    found = engine_not_run(warnings)
    if found is not None:  # the line that set the engine says it best
        message = found.message + hint
        raise ConfigError([dataclasses.replace(found, severity=Severity.ERROR, message=message)])
    given = [name.replace("_", "-") for name in MODEL_SOURCES if getattr(prop, name)]
    what = f"it gives {', '.join(given)}, which" if given else "it names no model, and"
    message = (
        f"ONNX Runtime runs ONNX models only and {what} Heron cannot run: set onnx-file= "
        f"(nvinfer builds its engine from that file too), or serve the model from Triton "
        f"(--backend triton){hint}"
    )
    raise ConfigError(
        [Diagnostic(Severity.ERROR, gie.config_file or Path(), 0, message, "property.onnx-file")]
    )


def _final_stage(pipeline: Pipeline, installed: Installed) -> tuple[Stage, list[str]]:
    """The stage whose metadata ends the chain, and the wanted stages not installed here."""
    if not pipeline.tracker.enable:
        return "inference", []
    return ("tracker", []) if installed("heron.tracker") else ("inference", ["tracker"])


def _source_fps(planned: list[PlannedSource], frame_rate: FrameRate) -> float | None:
    """The first source's frame rate (the rate RTSP announces): the camera's, or the file's;
    None when unknown (the overlay's default holds)."""
    spec, target = planned[0].spec, planned[0].target
    if spec.fps_n and spec.fps_d:
        return spec.fps_n / spec.fps_d
    return None if target.live else frame_rate(target)


def _ingest(options: PlanOptions, topology: Topology, overlay_input: str | None) -> dict[str, Any]:
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


def _inference(options: PlanOptions, topology: Topology, stream_ids: list[str]) -> dict[str, Any]:
    settings: dict[str, Any] = {
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
    if options.detector_listen is not None:
        settings["grpc"] = {"listen": options.detector_listen}
    return settings


def _control(options: PlanOptions, final: Stage) -> dict[str, Any]:
    return {
        "pipeline": options.pipeline,
        "log": {"level": options.log_level},
        "stage": final,
        "grpc": {"listen": options.grpc_listen},
    }


def _overlay(options: PlanOptions, final: Stage, fps: float | None) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "input_stage": final,
        "consumer_name": "overlay-0",
        "encoder_preset": options.encoder_preset,
        "consumer": OVERLAY_RECLAIM,
    }
    if fps is not None:  # else the overlay's own default
        settings["fps"] = fps
    return settings
