"""Which services a pipeline gets, with which settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from heron.core.config.diagnostics import ConfigError
from heron.run.options import RunOptions
from heron.run.plan import has_main, plan_run
from heron.run.runner import _describe as describe

URL = "redis://127.0.0.1:6399/0"
# The control service (the gRPC API) is planned last whenever it is installed.
CONTROL = ["control"] if has_main("heron.control") else []
needs_control = pytest.mark.skipif(not CONTROL, reason="heron.control is not installed")


def write_pipeline(folder: Path, source: str, *, extra: str = "", sink: str = "fake") -> Path:
    nvinfer = folder / "nvinfer.txt"
    (folder / "model.onnx").write_bytes(b"")
    (folder / "labels.txt").write_text("Mask\nNo-Mask\n")
    nvinfer.write_text(
        "[property]\nonnx-file=model.onnx\nlabelfile-path=labels.txt\nnum-detected-classes=2\n"
    )
    path = folder / "pipeline.yaml"
    path.write_text(
        f"sources:\n  0: {source}\n"
        f"sinks:\n  0: {{type: {sink}, enable: true}}\n"
        "primary_gie: {enable: true, config_file: nvinfer.txt}\n" + extra
    )
    return path


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"not decoded by the planner")
    return path


def settings(plan_dir: Path, name: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((plan_dir / f"{name}.json").read_text())
    return loaded


def test_files_without_loop_run_lossless_without_the_muxer(tmp_path: Path, clip: Path) -> None:
    config = write_pipeline(tmp_path, f"{{type: uri, enable: true, uri: '{clip.as_uri()}'}}")
    plan = plan_run(config, tmp_path / "run", RunOptions(), URL)
    assert plan.topology == "lossless"
    assert [s.child.name for s in plan.services] == ["ingest", "inference", *CONTROL]
    ingest, inference = (
        settings(tmp_path / "run", "ingest"),
        settings(tmp_path / "run", "inference"),
    )
    assert ingest["backpressure"] == "every_frame" and ingest["consumer_group"] == "inference"
    assert inference["input"] == "frames" and inference["frame_streams"] == ["source-0"]
    assert inference["consumer_name"] == "inference-0"
    assert plan.streams == ["source-0"] and plan.final_stage == "inference"


@pytest.mark.parametrize(
    ("source", "extra"),
    [
        ("{type: uri, enable: true, uri: 'lavfi://testsrc2=size=64x64:rate=5,realtime'}", ""),
        ("{type: uri, enable: true, uri: 'CLIP'}", "tests: {file_loop: true}\n"),
    ],
    ids=["live source", "file-loop"],
)
def test_live_sources_go_through_the_muxer(
    tmp_path: Path, clip: Path, source: str, extra: str
) -> None:
    config = write_pipeline(tmp_path, source.replace("CLIP", clip.as_uri()), extra=extra)
    plan = plan_run(config, tmp_path / "run", RunOptions(), URL)
    assert plan.topology == "live"
    assert [s.child.name for s in plan.services] == [
        "ingest", "streammux", "inference", *CONTROL,
    ]  # fmt: skip
    assert settings(tmp_path / "run", "ingest")["backpressure"] == "latest_frame_wins"
    assert settings(tmp_path / "run", "inference").get("input", "batches") == "batches"


def test_the_muxer_can_be_forced(tmp_path: Path, clip: Path) -> None:
    config = write_pipeline(tmp_path, f"{{type: uri, enable: true, uri: '{clip.as_uri()}'}}")
    plan = plan_run(config, tmp_path / "run", RunOptions(streammux=True), URL)
    assert "streammux" in [s.child.name for s in plan.services]


def test_commands_ports_and_secrets(tmp_path: Path, clip: Path) -> None:
    config = write_pipeline(tmp_path, f"{{type: uri, enable: true, uri: '{clip.as_uri()}'}}")
    plan = plan_run(config, tmp_path / "run", RunOptions(pipeline="lobby"), URL)
    ports = {s.metrics_port for s in plan.services}
    assert len(ports) == len(plan.services)
    for service in plan.services:
        text = service.settings_file.read_text()
        assert URL not in text  # the URL may hold a password: environment only
        assert service.child.env["HERON_REDIS_URL"] == URL
        assert json.loads(text)["pipeline"] == "lobby"
        assert json.loads(text)["metrics"]["port"] == service.metrics_port
    assert plan.services[0].child.argv[1:4] == ["-m", "heron.ingest", "-c"]


def test_triton_backend(tmp_path: Path, clip: Path) -> None:
    config = write_pipeline(tmp_path, f"{{type: uri, enable: true, uri: '{clip.as_uri()}'}}")
    options = RunOptions(backend="triton", triton_url="triton:8001", triton_model="facemask")
    plan_run(config, tmp_path / "run", options, URL)
    backend = settings(tmp_path / "run", "inference")["backend"]
    assert backend == {"kind": "triton", "url": "triton:8001", "model_name": "facemask"}
    with pytest.raises(ValueError, match="--triton-model"):
        plan_run(config, tmp_path / "run", RunOptions(backend="triton"), URL)


def test_without_a_triton_url_the_inference_services_default_holds(
    tmp_path: Path, clip: Path
) -> None:
    from heron.core.options import field_default
    from heron.core.plan.settings.inference import InferenceSettings, TritonSettings

    config = write_pipeline(tmp_path, f"{{type: uri, enable: true, uri: '{clip.as_uri()}'}}")
    plan_run(config, tmp_path / "run", RunOptions(backend="triton", triton_model="m"), URL)
    written: dict[str, Any] = settings(tmp_path / "run", "inference")
    assert "url" not in written["backend"]  # one home for the default: the service's model
    loaded = InferenceSettings.model_validate({**written, "redis_url": URL})
    assert isinstance(loaded.backend, TritonSettings)
    assert loaded.backend.url == field_default(TritonSettings, "url")


def test_tracker_and_overlay_when_enabled_and_installed(tmp_path: Path, clip: Path) -> None:
    tracker = "tracker: {enable: true, ll_lib_file: /opt/libnvds_mot_iou.so}\n"
    config = write_pipeline(
        tmp_path,
        f"{{type: uri, enable: true, uri: '{clip.as_uri()}'}}",
        extra=tracker + "osd: {enable: true}\n",
    )
    plan = plan_run(config, tmp_path / "run", RunOptions(), URL)
    names = [s.child.name for s in plan.services]
    for service in ("tracker", "overlay"):
        assert (service in names) == has_main(f"heron.{service}")
        assert (service in plan.skipped) != has_main(f"heron.{service}")
    assert plan.final_stage == ("tracker" if has_main("heron.tracker") else "inference")
    ingest = settings(tmp_path / "run", "ingest")
    if has_main("heron.overlay"):  # ingest must not outrun the overlay, the last pixel reader
        downstream = {"stage": plan.final_stage, "group": "overlay", "max_lag": 96 - 8}
        assert ingest["downstream"] == downstream
        # Frame refs say their own pixel size: the overlay needs no `frames` switch any more.
        overlay = settings(tmp_path / "run", "overlay")
        assert "frames" not in overlay and overlay["input_stage"] == plan.final_stage
    else:
        assert "downstream" not in ingest


@pytest.mark.parametrize(
    ("source", "extra", "downstream"),
    [
        ("{type: uri, enable: true, uri: 'CLIP'}", "", True),
        ("{type: uri, enable: true, uri: 'CLIP'}", "tests: {file_loop: true}\n", False),
    ],
    ids=["lossless", "live"],
)
def test_only_lossless_ingest_waits_for_the_overlay(
    tmp_path: Path, clip: Path, source: str, extra: str, downstream: bool
) -> None:
    drawn = extra + "osd: {enable: true}\n"  # an OSD needs the overlay
    config = write_pipeline(tmp_path, source.replace("CLIP", clip.as_uri()), extra=drawn)
    plan_run(config, tmp_path / "run", RunOptions(shm_slots=40, max_lag=4), URL)
    ingest = settings(tmp_path / "run", "ingest")
    expected = {"stage": "inference", "group": "overlay", "max_lag": 36}
    wanted = downstream and has_main("heron.overlay")
    assert ingest.get("downstream") == (expected if wanted else None)
    if has_main("heron.overlay"):  # the same overlay settings for both: refs say their size
        assert "frames" not in settings(tmp_path / "run", "overlay")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("sources: {0: {type: uri, enable: true, uri: 'file:///gone.mp4'}}\n", "does not exist"),
        ("sources: [\n", "pipeline.yaml"),
        ("sources: {0: {type: uri, enable: true, uri: 'ftp://x/y.mp4'}}\n", "ftp"),
    ],
)
def test_bad_pipelines_name_the_file_and_problem(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(body + "sinks: {0: {type: fake, enable: true}}\n")
    with pytest.raises((ConfigError, ValueError, OSError), match=message):
        plan_run(path, tmp_path / "run", RunOptions(), URL)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"backend": "tensorrt"}, "onnxruntime"),
        ({"shm_slots": 1}, "greater than or equal to 2"),
        ({"max_lag": 0}, "greater than or equal to 1"),
        ({"pipelines": "x"}, "Extra inputs"),
    ],
)
def test_options_reject_bad_values(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RunOptions.model_validate(fields)


@pytest.mark.parametrize("preset", [None, "superfast"])
def test_the_encoder_preset_reaches_the_overlay(
    tmp_path: Path, clip: Path, preset: str | None
) -> None:
    if not has_main("heron.overlay"):
        pytest.skip("heron.overlay is not installed here")
    config = write_pipeline(
        tmp_path,
        f"{{type: uri, enable: true, uri: '{clip.as_uri()}'}}",
        extra="osd: {enable: true}\n",
    )
    options = RunOptions() if preset is None else RunOptions(encoder_preset=preset)

    plan_run(config, tmp_path / "run", options, URL)

    # Default: the cheapest x264 preset, as the encoder shares the CPU with inference.
    assert settings(tmp_path / "run", "overlay")["encoder_preset"] == (preset or "ultrafast")


def test_the_configs_warnings_reach_the_plan(tmp_path: Path, clip: Path) -> None:
    write_pipeline(tmp_path, "{type: uri, enable: true, uri: x}")  # the nvinfer files
    config = tmp_path / "app.txt"
    config.write_text(
        f"[source0]\nenable=1\ntype=3\nuri={clip.as_uri()}\nbogus-key=1\n\n"
        "[sink0]\nenable=1\ntype=1\n\n[primary-gie]\nenable=1\nconfig-file=nvinfer.txt\n"
    )
    plan = plan_run(config, tmp_path / "run", RunOptions(), URL)
    assert [(w.line, w.field) for w in plan.warnings] == [(5, "source0.bogus-key")]
    shown: list[str] = []
    describe(plan, tmp_path / "run", shown.append)  # what `heron run` prints before starting
    assert f"warning: {config}:5: [source0.bogus-key] unknown key 'bogus-key'; it is ignored" in (
        shown
    )


@needs_control
@pytest.mark.parametrize("listen", ["127.0.0.1:6123", "0.0.0.0:0"])
def test_the_control_service_listens_where_asked(tmp_path: Path, clip: Path, listen: str) -> None:
    config = write_pipeline(tmp_path, f"{{type: uri, enable: true, uri: '{clip.as_uri()}'}}")
    plan = plan_run(config, tmp_path / "run", RunOptions(grpc_listen=listen), URL)
    written = settings(tmp_path / "run", "control")
    host, _, port = written["grpc"]["listen"].rpartition(":")  # type: ignore[index]
    assert written["stage"] == plan.final_stage == "inference"
    if listen.endswith(":0"):  # a free port, chosen before the start so it can be printed
        assert host == "0.0.0.0" and int(port) > 0
    else:
        assert f"{host}:{port}" == listen
    control = plan.services[-1]
    assert control.child.argv[1:4] == ["-m", "heron.control", "-c"]
    shown: list[str] = []
    describe(plan, tmp_path / "run", shown.append)
    assert f"gRPC: 127.0.0.1:50052 (Detector), {host}:{port} (Pipeline, Detections)" in shown


@needs_control
def test_the_inference_service_serves_the_detector_where_asked(tmp_path: Path, clip: Path) -> None:
    config = write_pipeline(tmp_path, f"{{type: uri, enable: true, uri: '{clip.as_uri()}'}}")
    options = RunOptions(grpc_listen="127.0.0.1:6123", detector_listen="127.0.0.1:0")
    plan = plan_run(config, tmp_path / "run", options, URL)
    written = settings(tmp_path / "run", "inference")
    host, _, port = written["grpc"]["listen"].rpartition(":")  # type: ignore[index]
    assert host == "127.0.0.1" and int(port) > 0  # chosen before the start, to be printed
    shown: list[str] = []
    describe(plan, tmp_path / "run", shown.append)
    assert f"gRPC: {host}:{port} (Detector), 127.0.0.1:6123 (Pipeline, Detections)" in shown
    plan_run(config, tmp_path / "off", RunOptions(detector_listen=None), URL)
    assert "grpc" not in settings(tmp_path / "off", "inference")
