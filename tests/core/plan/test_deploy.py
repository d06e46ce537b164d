"""The plan made into Helm chart values (`heron config plan --format helm`): what is shipped
beside the config, what a pod adds to the plan, and every config a pod could not run, refused
with file, line and key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from heron.core.config.cli import app
from heron.core.config.diagnostics import ConfigError
from heron.core.config.models import Pipeline
from heron.core.config.nvinfer_models import NvInferConfig
from heron.core.config.pipeline_file import load_pipeline
from heron.core.framestore.layout import Layout
from heron.core.media_uri import MediaTarget
from heron.core.plan.deploy import (
    FIELD_KINDS,
    METRICS_PORTS,
    DeployError,
    configmap_key,
    dump_values,
    helm_values,
    path_fields,
    pipeline_name,
    pipeline_values,
    shm_bytes,
    shm_size_limit,
)
from heron.core.plan.model import PipelinePlan
from heron.core.plan.options import PlanOptions
from typer.testing import CliRunner

from tests.core.plan.pipelines import FILE_SOURCE, LIVE_SOURCE, write_pipeline

runner = CliRunner()
ENV = {"COLUMNS": "300"}
MODEL = "/models/facemask/model.onnx"  # absolute: on the models volume, never shipped

APP = """\
[source0]
enable=1
type=4
uri=rtsp://cam.example/live
[source1]
enable=1
type=4
uri=rtsp://cam2.example/live
[sink0]
enable=1
type=4
rtsp-port=8554
[osd]
enable=1
[streammux]
live-source=1
width=960
height=544
[primary-gie]
enable=1
config-file=nvinfer.txt
[tracker]
enable=1
ll-lib-file=/opt/libnvds_nvmultiobjecttracker.so
ll-config-file=trackers/iou.yml
"""
NVINFER = f"[property]\nonnx-file={MODEL}\nlabelfile-path=labels.txt\nnum-detected-classes=2\n"


def no_rate(_target: MediaTarget) -> float | None:
    return None


def write_app(folder: Path, app_text: str = APP, nvinfer: str = NVINFER) -> Path:
    """app.txt with its nvinfer config, labels and tracker config (in a sub-folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "nvinfer.txt").write_text(nvinfer)
    (folder / "labels.txt").write_text("Mask\nNo-Mask\n")
    (folder / "trackers").mkdir(exist_ok=True)
    (folder / "trackers" / "iou.yml").write_text("BaseConfig:\n  minDetectorConfidence: 0.3\n")
    config = folder / "app.txt"
    config.write_text(app_text)
    return config


def yaml_pipeline(folder: Path, source: str = LIVE_SOURCE, name: str = "pipeline") -> Path:
    """write_pipeline's YAML in its own folder, named `name`.yaml, its model on the volume."""
    folder.mkdir(parents=True)
    config = write_pipeline(folder, source)
    (folder / "nvinfer.txt").write_text(NVINFER)
    return config.rename(config.with_name(f"{name}.yaml"))


def values_for(config: Path, name: str = "cams") -> dict[str, Any]:
    return pipeline_values(config, PlanOptions(), name=name, frame_rate=no_rate).entry


def refusal(config: Path) -> list[str]:
    """The findings a refused config gets, as the CLI prints them."""
    with pytest.raises(ConfigError) as caught:
        pipeline_values(config, PlanOptions(), name="cams", frame_rate=no_rate)
    return [str(d) for d in caught.value.diagnostics if d.severity.value == "error"]


def test_every_path_key_of_the_config_models_is_classified() -> None:
    # A new path key must say what a pod does with it (ship it, read it from a volume, ...).
    keys = set(path_fields(Pipeline, deep=True)) | set(path_fields(NvInferConfig, deep=True))

    assert keys == set(FIELD_KINDS)


def test_the_config_and_the_text_files_it_names_are_shipped_unchanged(tmp_path: Path) -> None:
    config = write_app(tmp_path)

    entry = values_for(config)

    assert entry["name"] == "cams"
    assert entry["config"] == {"file": "app.txt", "text": APP}
    assert entry["files"] == {
        "labels.txt": "Mask\nNo-Mask\n",
        "nvinfer.txt": NVINFER,
        "trackers/iou.yml": "BaseConfig:\n  minDetectorConfidence: 0.3\n",
    }
    assert entry["rtspPorts"] == [8554]


def test_the_plan_is_made_for_a_pod(tmp_path: Path) -> None:
    config = write_app(tmp_path)

    made = pipeline_values(config, PlanOptions(), name="cams", frame_rate=no_rate)
    data = made.entry["plan"]

    assert isinstance(data, dict)
    assert data["config"] == "/etc/heron/pipeline/app.txt"
    services = {s["service"]: s["settings"] for s in data["services"]}
    assert list(services) == ["ingest", "streammux", "inference", "tracker", "overlay", "control"]
    for name, settings in services.items():
        assert settings["metrics"] == {"port": METRICS_PORTS[name]}
        assert settings.get("pipeline_config", data["config"]) == data["config"]
        assert settings["pipeline"] == "cams"
        assert "redis_url" not in settings
    # The containers of one pod share its network: every port differs (control has its own pod).
    in_pod = [s["metrics"]["port"] for n, s in services.items() if n != "control"]
    assert len(set(in_pod)) == len(in_pod)
    assert services["inference"]["grpc"] == {"listen": "0.0.0.0:50052"}
    assert services["control"]["grpc"] == {"listen": "0.0.0.0:50051"}
    assert services["overlay"]["rtsp_address"] == "0.0.0.0"
    # Nothing of this machine's paths is left, warnings included.
    assert str(tmp_path) not in json.dumps(data)
    assert [w["file"] for w in data["warnings"]] == [
        "/etc/heron/pipeline/nvinfer.txt",
        "/etc/heron/pipeline/app.txt",
    ]
    # Apart from what a pod adds, the settings are the plan's: one source of truth.
    for planned, pod in zip(made.plan.services, data["services"], strict=True):
        ours = planned.settings.model_dump(mode="json", exclude_unset=True)
        theirs = {k: v for k, v in pod["settings"].items() if k not in ("metrics", "rtsp_address")}
        theirs.pop("pipeline_config", None)
        ours.pop("pipeline_config", None)
        if "grpc" in ours:
            assert theirs.pop("grpc")["listen"].split(":")[1] == ours.pop("grpc")["listen"][-5:]
        assert theirs == ours


def test_a_file_in_a_parent_folder_puts_the_config_in_a_sub_folder(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "labels.txt").write_text("Mask\nNo-Mask\n")
    nvinfer = NVINFER.replace("labelfile-path=labels.txt", "labelfile-path=../shared/labels.txt")
    config = write_app(tmp_path / "site", nvinfer=nvinfer)

    made = pipeline_values(config, PlanOptions(), name="cams", frame_rate=no_rate)

    assert made.entry["config"]["file"] == "site/app.txt"
    assert set(made.entry["files"]) == {
        "shared/labels.txt",
        "site/nvinfer.txt",
        "site/trackers/iou.yml",
    }
    assert made.entry["plan"]["config"] == "/etc/heron/pipeline/site/app.txt"
    assert configmap_key("site/trackers/iou.yml") == "site_trackers_iou.yml"


def test_a_yaml_pipeline_ships_its_nvinfer_config(tmp_path: Path) -> None:
    config = write_pipeline(tmp_path, LIVE_SOURCE)
    (tmp_path / "nvinfer.txt").write_text(NVINFER)

    entry = values_for(config)

    assert set(entry["files"]) == {"labels.txt", "nvinfer.txt"}
    assert "rtspPorts" not in entry  # no overlay: a fake sink


def test_a_model_named_by_a_relative_path_is_refused(tmp_path: Path) -> None:
    nvinfer = (
        "[property]\nnum-detected-classes=2\nonnx-file=model.onnx\nlabelfile-path=labels.txt\n"
    )
    config = write_app(tmp_path, nvinfer=nvinfer)
    (tmp_path / "model.onnx").write_bytes(b"\x08\x07onnx")

    errors = refusal(config)

    assert len(errors) == 1
    assert errors[0].startswith(
        f"{tmp_path / 'nvinfer.txt'}:3: error: [property.onnx-file] model file 'model.onnx' is "
        "named by a relative path"
    )
    assert "models volume" in errors[0] and "absolute path" in errors[0]


def test_every_relative_model_and_engine_is_named(tmp_path: Path) -> None:
    app_text = APP.replace(
        "config-file=nvinfer.txt", "config-file=nvinfer.txt\nmodel-engine-file=m.engine"
    )
    nvinfer = NVINFER + "int8-calib-file=cal.bin\n"
    config = write_app(tmp_path, app_text, nvinfer)

    errors = refusal(config)

    assert [e.split(" error: ")[1].split("]")[0] + "]" for e in errors] == [
        "[primary-gie.model-engine-file]",
        "[property.int8-calib-file]",
    ]


def test_a_missing_referenced_file_is_refused(tmp_path: Path) -> None:
    config = write_app(tmp_path, APP.replace("trackers/iou.yml", "trackers/gone.yml"))

    errors = refusal(config)

    assert errors == [
        f"{config}:25: error: [tracker.ll-config-file] file 'trackers/gone.yml' "
        f"({tmp_path / 'trackers' / 'gone.yml'}) does not exist: the chart ships the text files a "
        "config names by relative path beside it, so each must be readable where you plan"
    ]


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00", "byte 0x89 at offset 0"),
        (b"caf\xe9\n", "byte 0xe9 at offset 3"),
    ],
    ids=["binary", "latin-1"],
)
def test_a_binary_file_named_as_text_is_refused(tmp_path: Path, data: bytes, why: str) -> None:
    # The pipeline's loader reads the tracker's ll-config-file itself (as the tracker service
    # does), so it refuses a file that is not text before the chart's values are made.
    config = write_app(tmp_path)
    (tmp_path / "trackers" / "iou.yml").write_bytes(data)

    errors = refusal(config)

    assert errors == [f"{tmp_path / 'trackers' / 'iou.yml'}: error: not valid UTF-8 ({why})"]


def test_a_relative_file_source_and_output_are_refused(tmp_path: Path) -> None:
    (tmp_path / "clip.mp4").write_bytes(b"not decoded")
    app_text = APP.replace(
        "type=4\nuri=rtsp://cam2.example/live", "type=2\nuri=file://clip.mp4"
    ) + ("[sink1]\nenable=1\ntype=3\noutput-file=out.mp4\n")
    config = write_app(tmp_path, app_text)

    errors = refusal(config)

    assert len(errors) == 2
    assert "[source1.uri] file source 'file://clip.mp4' is named by a relative path" in errors[0]
    assert "[sink1.output-file] output 'out.mp4' is named by a relative path" in errors[1]


def test_a_camera_and_a_password_are_refused(tmp_path: Path) -> None:
    camera = "type=1\ncamera-width=640\ncamera-height=480\ncamera-fps-n=30\ncamera-fps-d=1"
    app_text = APP.replace("type=4\nuri=rtsp://cam.example/live", camera)
    app_text += "[message-broker]\nhostname=broker\npassword=hunter2\n"
    config = write_app(tmp_path, app_text)

    with pytest.raises((ConfigError, ValueError)) as caught:
        pipeline_values(config, PlanOptions(), name="cams", frame_rate=no_rate)

    assert isinstance(caught.value, ConfigError)
    text = "\n".join(str(d) for d in caught.value.diagnostics)
    assert f"{config}:3: error: [source0.type] a V4L2 camera (type=1)" in text
    assert "[message-broker.password] a password in the pipeline config" in text
    assert "hunter2" not in text


def test_a_disabled_group_is_not_read(tmp_path: Path) -> None:
    # deepstream-app skips disabled groups: so does the chart (a relative clip there is fine).
    app_text = APP + "[source2]\nenable=0\ntype=3\nuri=file://../../data/clip.mp4\n"
    config = write_app(tmp_path, app_text)

    assert values_for(config)["config"] == {"file": "app.txt", "text": app_text}


def test_ring_memory_and_the_shm_size(tmp_path: Path) -> None:
    config = write_app(tmp_path)
    pipeline, _ = load_pipeline(config)
    made = pipeline_values(config, PlanOptions(), name="cams", frame_rate=no_rate)

    rings = shm_bytes(pipeline, made.plan)

    camera = Layout(96, 1920 * 1080 * 3).total  # a live camera's size is unknown: 1080p
    muxer = Layout(32 * 2, 960 * 544 * 3).total  # ring_batches x batch size (two streams)
    assert rings == 2 * camera + muxer
    assert made.entry["shm"] == {"sizeLimit": shm_size_limit(rings)}
    assert shm_size_limit(rings) == "2496Mi"  # twice the rings, in 64 MiB steps
    assert shm_size_limit(1) == "64Mi"


def test_names_come_from_the_file_or_pipeline(tmp_path: Path) -> None:
    assert pipeline_name(Path("Lobby_Cams.v2.txt")) == "lobby-cams-v2"
    config = write_app(tmp_path)

    values, _ = helm_values([config], PlanOptions(), frame_rate=no_rate)

    assert [p["name"] for p in values["pipelines"]] == ["app"]
    for bad in ("Cams", "cams_1", "redis", "triton-a", "x" * 31):
        with pytest.raises(DeployError, match="pipeline name"):
            helm_values([config], PlanOptions(), name=bad, frame_rate=no_rate)


def test_several_pipelines_must_not_clash(tmp_path: Path) -> None:
    lobby = yaml_pipeline(tmp_path / "lobby")
    dock = yaml_pipeline(tmp_path / "dock")

    with pytest.raises(DeployError, match="both named 'pipeline'"):
        helm_values([lobby, dock], PlanOptions(), frame_rate=no_rate)
    dock = dock.rename(dock.with_name("dock.yaml"))
    with pytest.raises(DeployError, match="both have stream 'source-0'"):
        helm_values([lobby, dock], PlanOptions(), frame_rate=no_rate)
    dock.write_text(dock.read_text().replace("enable: true,", "enable: true, source_id: 7,"))
    with pytest.raises(DeployError, match="are all live"):
        helm_values([lobby, dock], PlanOptions(), frame_rate=no_rate)
    with pytest.raises(DeployError, match="--pipeline names one pipeline"):
        helm_values([lobby, dock], PlanOptions(), name="x", frame_rate=no_rate)


def test_a_live_and_a_file_pipeline_go_together(tmp_path: Path) -> None:
    lobby = yaml_pipeline(tmp_path / "lobby")
    replay = yaml_pipeline(tmp_path / "replay", FILE_SOURCE, "replay")
    replay.write_text(replay.read_text().replace("enable: true,", "enable: true, source_id: 1,"))

    values, made = helm_values([lobby, replay], PlanOptions(), frame_rate=no_rate)

    assert [p["name"] for p in values["pipelines"]] == ["pipeline", "replay"]
    assert [m.plan.topology for m in made] == ["live", "lossless"]


@pytest.mark.parametrize(
    "text",
    ["a\nb\n", "no newline at the end", "trailing spaces  \nand\ttabs\n", "crlf\r\nline\r\n",
     "ünïcödé\n\n\n", "", "#!/x\n  indented first\n"],
)  # fmt: skip
def test_texts_survive_the_values_file(text: str) -> None:
    values = {"pipelines": [{"name": "x", "config": {"file": "a.txt", "text": text}}]}

    dumped = dump_values(values)

    assert yaml.safe_load(dumped) == values
    assert dumped.startswith("# Heron chart values: x, written by")


# --- the command ---------------------------------------------------------------------------


def test_the_command_prints_the_values(tmp_path: Path) -> None:
    config = write_app(tmp_path)

    result = runner.invoke(
        app, ["plan", str(config), "--format", "helm", "--pipeline", "cams"], env=ENV
    )

    assert result.exit_code == 0, result.output
    values = yaml.safe_load(result.stdout)
    (entry,) = values["pipelines"]
    assert entry["name"] == "cams" and entry["config"]["text"] == APP
    plan = entry["plan"]
    assert plan["services"][0]["settings"]["pipeline"] == "cams"
    # The plan validates as one, once its paths are this machine's again.
    local = json.dumps(plan).replace("/etc/heron/pipeline", str(tmp_path))
    assert PipelinePlan.model_validate_json(local).topology == "live"
    # The config's warnings go to stderr, as for the other formats.
    assert f"{tmp_path / 'nvinfer.txt'}:2: warning: [property.onnx-file]" in result.stderr


def test_the_command_refuses_naming_file_and_line(tmp_path: Path) -> None:
    config = write_app(tmp_path, nvinfer=NVINFER.replace(MODEL, "m.onnx"))

    result = runner.invoke(app, ["plan", str(config), "--format", "helm"], env=ENV)

    assert result.exit_code == 1
    assert result.stdout == ""
    assert f"{tmp_path / 'nvinfer.txt'}:2: error: [property.onnx-file] model file 'm.onnx'" in (
        result.stderr
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "json"], "--format json prints one plan: give one config"),
        (["--format", "helm", "--pipeline", "x"], "--pipeline names one pipeline"),
    ],
)
def test_several_configs_only_for_helm(tmp_path: Path, args: list[str], message: str) -> None:
    one = write_app(tmp_path / "a")
    two = write_app(tmp_path / "b")

    result = runner.invoke(app, ["plan", str(one), str(two), *args], env=ENV)

    assert result.exit_code == 1
    assert message in result.stderr
