"""The pure planner: a pipeline config and PlanOptions → a typed PipelinePlan."""

from __future__ import annotations

from pathlib import Path

import pytest
from heron.core.config.diagnostics import ConfigError
from heron.core.media_uri import MediaTarget
from heron.core.plan.model import PipelinePlan
from heron.core.plan.options import PlanOptions
from heron.core.plan.planner import Installed, plan_pipeline
from heron.core.plan.settings.control import ControlSettings
from heron.core.plan.settings.inference import (
    InferenceSettings,
    OnnxRuntimeSettings,
    TritonSettings,
)
from heron.core.plan.settings.ingest import Backpressure, DownstreamSettings, IngestSettings
from heron.core.plan.settings.overlay import OverlaySettings
from heron.core.plan.settings.streammux import StreammuxSettings
from heron.core.plan.settings.tracker import TrackerSettings
from heron.core.plan.sources import SourceConfigError
from heron.core.runtime import ServiceSettings

from tests.core.plan.pipelines import FILE_SOURCE, LIVE_SOURCE, OSD, TRACKER, write_pipeline


def everything(_module: str) -> bool:
    return True


def nothing_optional(module: str) -> bool:
    return module not in ("heron.tracker", "heron.overlay", "heron.control")


def no_rate(_target: MediaTarget) -> float | None:
    return None


def plan(
    folder: Path,
    source: str = FILE_SOURCE,
    *,
    extra: str = "",
    options: PlanOptions | None = None,
    installed: Installed = everything,
) -> PipelinePlan:
    config = write_pipeline(folder, source, extra=extra)
    return plan_pipeline(config, options or PlanOptions(), installed=installed, frame_rate=no_rate)


SETTINGS_CLASSES: dict[str, type[ServiceSettings]] = {
    "ingest": IngestSettings,
    "streammux": StreammuxSettings,
    "inference": InferenceSettings,
    "tracker": TrackerSettings,
    "overlay": OverlaySettings,
    "control": ControlSettings,
}


@pytest.mark.parametrize(
    ("source", "extra", "topology", "names"),
    [
        (FILE_SOURCE, "", "lossless", ["ingest", "inference", "control"]),
        (LIVE_SOURCE, "", "live", ["ingest", "streammux", "inference", "control"]),
        (FILE_SOURCE, "tests: {file_loop: true}\n", "live",
         ["ingest", "streammux", "inference", "control"]),
        (FILE_SOURCE, TRACKER + OSD, "lossless",
         ["ingest", "inference", "tracker", "overlay", "control"]),
        (LIVE_SOURCE, TRACKER + OSD, "live",
         ["ingest", "streammux", "inference", "tracker", "overlay", "control"]),
    ],
    ids=["file", "live source", "file-loop", "file, tracker, osd", "live, tracker, osd"],
)  # fmt: skip
def test_round_trip_keeps_every_service_typed(
    tmp_path: Path, source: str, extra: str, topology: str, names: list[str]
) -> None:
    planned = plan(tmp_path, source, extra=extra)

    assert planned.topology == topology
    assert [s.service for s in planned.services] == names
    back = PipelinePlan.model_validate_json(planned.model_dump_json())
    assert back == planned
    for service in back.services:
        assert type(service.settings) is SETTINGS_CLASSES[service.service]
        assert service.module == f"heron.{service.service}"
        if isinstance(service.settings, ControlSettings):  # it reads the bus, not the config
            assert service.settings.stage == planned.final_stage
        else:
            assert service.settings.pipeline_config == tmp_path / "pipeline.yaml"


def test_lossless_ingest_waits_for_inference_and_the_overlay(tmp_path: Path) -> None:
    options = PlanOptions(shm_slots=40, max_lag=4)
    planned = plan(tmp_path, extra=TRACKER + OSD, options=options)

    ingest = planned.services[0].settings
    assert isinstance(ingest, IngestSettings)
    assert ingest.backpressure is Backpressure.EVERY_FRAME
    assert (ingest.consumer_group, ingest.max_lag, ingest.frame_stream_max_len) == (
        "inference", 4, 40,
    )  # fmt: skip
    assert ingest.downstream == DownstreamSettings(stage="tracker", group="overlay", max_lag=36)
    inference = planned.services[1].settings
    assert isinstance(inference, InferenceSettings)
    assert (inference.input, inference.frame_streams) == ("frames", ["source-0"])
    assert planned.streams == ["source-0"] and planned.final_stage == "tracker"


def test_live_ingest_drops_and_the_muxer_batches(tmp_path: Path) -> None:
    planned = plan(tmp_path, LIVE_SOURCE, extra=OSD, options=PlanOptions(ring_batches=7))

    ingest, muxer, inference, _overlay, _control = (s.settings for s in planned.services)
    assert isinstance(ingest, IngestSettings) and isinstance(muxer, StreammuxSettings)
    assert ingest.backpressure is Backpressure.LATEST_FRAME_WINS and ingest.downstream is None
    assert muxer.ring_batches == 7
    assert isinstance(inference, InferenceSettings) and inference.input == "batches"


def test_every_consumer_reclaims_its_own_pending_input_at_once(tmp_path: Path) -> None:
    planned = plan(tmp_path, extra=TRACKER + OSD)

    for service in planned.services[1:-1]:  # not ingest, nor control (it reads no group)
        settings = service.settings
        assert isinstance(settings, InferenceSettings | TrackerSettings | OverlaySettings)
        assert settings.consumer_name == f"{service.service}-0"
        assert (settings.consumer.min_idle_ms, settings.consumer.reclaim_interval_ms) == (
            1000, 1000,
        )  # fmt: skip


def test_services_not_installed_are_skipped(tmp_path: Path) -> None:
    planned = plan(tmp_path, extra=TRACKER + OSD, installed=nothing_optional)

    assert [s.service for s in planned.services] == ["ingest", "inference"]
    assert planned.skipped == ["tracker", "overlay"] and planned.final_stage == "inference"
    ingest = planned.services[0].settings
    assert isinstance(ingest, IngestSettings) and ingest.downstream is None


def test_a_fake_sink_alone_needs_no_overlay(tmp_path: Path) -> None:
    assert [s.service for s in plan(tmp_path).services] == ["ingest", "inference", "control"]


@pytest.mark.parametrize(("extra", "stage"), [("", "inference"), (TRACKER, "tracker")])
def test_the_control_service_follows_the_last_stage(tmp_path: Path, extra: str, stage: str) -> None:
    options = PlanOptions(grpc_listen="0.0.0.0:6000", pipeline="lobby")
    control = plan(tmp_path, extra=extra, options=options).service("control")

    assert control is not None and isinstance(control.settings, ControlSettings)
    assert (control.settings.stage, control.settings.grpc.listen) == (stage, "0.0.0.0:6000")
    assert control.settings.pipeline == "lobby"
    assert PlanOptions().grpc_listen == "127.0.0.1:50051"


@pytest.mark.parametrize("listen", ["50051", "localhost:", "host:70000", ":50051"])
def test_a_bad_grpc_listen_is_refused(listen: str) -> None:
    with pytest.raises(ValueError, match="grpc_listen"):
        PlanOptions(grpc_listen=listen)


def test_the_overlay_gets_the_options_and_the_files_rate(tmp_path: Path) -> None:
    config = write_pipeline(tmp_path, extra=OSD)
    options = PlanOptions(encoder_preset="superfast", pipeline="lobby", log_level="debug")

    planned = plan_pipeline(config, options, installed=everything, frame_rate=lambda _: 25.0)

    planned_overlay = planned.service("overlay")
    assert planned_overlay is not None
    overlay = planned_overlay.settings
    assert isinstance(overlay, OverlaySettings)
    assert (overlay.fps, overlay.encoder_preset, overlay.input_stage) == (
        25.0, "superfast", "inference",
    )  # fmt: skip
    assert {(s.settings.pipeline, s.settings.log.level) for s in planned.services} == {
        ("lobby", "DEBUG")
    }


def test_an_unknown_rate_leaves_the_overlays_default(tmp_path: Path) -> None:
    overlay = plan(tmp_path, extra=OSD).service("overlay")

    assert overlay is not None
    assert "fps" not in overlay.model_dump()["settings"]
    assert isinstance(overlay.settings, OverlaySettings) and overlay.settings.fps == 30.0


@pytest.mark.parametrize(
    ("options", "backend"),
    [
        (PlanOptions(intra_op_threads=3), OnnxRuntimeSettings(intra_op_threads=3)),
        (PlanOptions(backend="triton", triton_model="m", triton_url="t:1"),
         TritonSettings(model_name="m", url="t:1")),
        (PlanOptions(backend="triton", triton_model="m"), TritonSettings(model_name="m")),
    ],
    ids=["onnxruntime", "triton", "triton's default url"],
)  # fmt: skip
def test_backends(tmp_path: Path, options: PlanOptions, backend: object) -> None:
    inference = plan(tmp_path, options=options).services[1]

    assert isinstance(inference.settings, InferenceSettings)
    assert inference.settings.backend == backend
    # The written form names the backend's kind even where it is the default.
    assert "kind" in inference.model_dump(mode="json")["settings"]["backend"]


def test_the_plan_holds_no_redis_url(tmp_path: Path) -> None:
    text = plan(tmp_path, extra=TRACKER + OSD).model_dump_json()

    assert "redis_url" not in text and "redis://" not in text and "**" not in text


def test_the_configs_warnings_serialize_with_file_and_line(tmp_path: Path) -> None:
    planned = plan(tmp_path, extra=TRACKER)

    [warning] = planned.model_dump(mode="json")["warnings"]
    assert (
        warning["field"] == "tracker.ll_lib_file" and warning["line"] == 6
    )  # pipeline.yaml: sources (2), sinks (2), gie, tracker
    assert warning["severity"] == "warning" and warning["file"] == str(tmp_path / "pipeline.yaml")


@pytest.mark.parametrize(
    ("library", "warned"),
    [
        ("libheron_bytetrack.so", False),  # Heron's own tracker: a name, a file nowhere
        ("/opt/libheron_bytetrack.so", False),
        ("/opt/libnvds_mot_iou.so", True),  # DeepStream's: a file DeepStream would load
    ],
)
def test_only_deepstreams_own_tracker_libraries_are_looked_for(
    tmp_path: Path, library: str, warned: bool
) -> None:
    planned = plan(tmp_path, extra=f"tracker: {{enable: true, ll_lib_file: {library}}}\n")
    assert [w.field for w in planned.warnings] == (["tracker.ll_lib_file"] if warned else [])


@pytest.mark.parametrize(
    ("source", "extra", "error", "message"),
    [
        ("{type: uri, enable: true, uri: 'file:///gone.mp4'}", "", SourceConfigError,
         "does not exist"),
        ("{type: uri, enable: true, uri: 'ftp://x/y.mp4'}", "", ConfigError,
         r"pipeline\.yaml:\d+: error: \[sources\.0\.uri\] .*unsupported scheme 'ftp'"),
        (FILE_SOURCE, "sinks: [\n", ConfigError, r"pipeline\.yaml:\d+"),
    ],
    ids=["missing file", "unknown scheme", "malformed yaml"],
)  # fmt: skip
def test_refusals_name_the_problem(
    tmp_path: Path, source: str, extra: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        plan(tmp_path, source, extra=extra)


def test_triton_needs_a_model(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--triton-model"):
        plan(tmp_path, options=PlanOptions(backend="triton"))


def test_a_recording_over_its_own_input_is_refused(tmp_path: Path) -> None:
    sink = f"  1: {{type: file, enable: true, output_file: {tmp_path / 'clip.mp4'}}}\n"
    config = write_pipeline(tmp_path)
    text = config.read_text().replace("sinks:\n", "sinks:\n" + sink)
    config.write_text(text)

    with pytest.raises(ValueError, match=r"\[sink1\] output-file"):
        plan_pipeline(config, PlanOptions(), installed=everything, frame_rate=no_rate)


def test_settings_a_service_would_refuse_are_refused_when_planning(tmp_path: Path) -> None:
    # every_frame needs more ring slots than frames in flight: IngestSettings says so now,
    # not the ingest process when it starts.
    with pytest.raises(ValueError, match="every_frame needs"):
        plan(tmp_path, options=PlanOptions(shm_slots=4, max_lag=8))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"backend": "tensorrt"}, "onnxruntime"),
        ({"shm_slots": 1}, "greater than or equal to 2"),
        ({"in_process": True}, "Extra inputs"),
    ],
)
def test_options_reject_bad_values(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PlanOptions.model_validate(fields)


def engine_only(folder: Path) -> Path:
    """The pipeline with a TensorRT engine and an .etlt, no ONNX model (NVIDIA's samples')."""
    config = write_pipeline(folder)
    (folder / "nvinfer.txt").write_text(
        "[property]\ntlt-encoded-model=model.etlt\ntlt-model-key=k\n"
        "model-engine-file=model.etlt_b1_gpu0_int8.engine\n"
        "labelfile-path=labels.txt\nnum-detected-classes=2\n"
    )
    return config


def test_onnx_runtime_refuses_an_engine_only_detector_before_anything_starts(
    tmp_path: Path,
) -> None:
    config = engine_only(tmp_path)
    with pytest.raises(ConfigError) as refused:
        plan_pipeline(config, PlanOptions(), installed=everything, frame_rate=no_rate)
    (error,) = refused.value.diagnostics
    assert error.file == tmp_path / "nvinfer.txt" and error.field == "property.onnx-file"
    assert "it gives tlt-encoded-model, which Heron cannot run" in error.message
    assert "set onnx-file=" in error.message and "`heron export`" in error.message


def test_an_engine_set_in_the_app_config_is_named_at_its_line(tmp_path: Path) -> None:
    config = write_pipeline(tmp_path)
    (tmp_path / "nvinfer.txt").write_text(
        "[property]\nmodel-engine-file=a.engine\nlabelfile-path=labels.txt\n"
        "num-detected-classes=2\n"
    )  # the group's engine wins over the nvinfer config's, as in deepstream-app
    text = config.read_text().replace(
        "config_file: nvinfer.txt}", "config_file: nvinfer.txt, model_engine_file: m.engine}"
    )
    config.write_text(text)
    with pytest.raises(ConfigError) as refused:
        plan_pipeline(config, PlanOptions(), installed=everything, frame_rate=no_rate)
    (error,) = refused.value.diagnostics
    assert error.file == config and error.line > 0
    assert "is a TensorRT engine, which Heron cannot run" in error.message
    assert "`heron export`" in error.message


def test_triton_may_serve_an_engine_only_detector(tmp_path: Path) -> None:
    options = PlanOptions(backend="triton", triton_model="facemask")
    plan_pipeline(engine_only(tmp_path), options, installed=everything, frame_rate=no_rate)
