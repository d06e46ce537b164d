"""[primary-gie] keys over its nvinfer config: each one applied as deepstream-app applies it
(the group's value wins), or a finding on its line; never parsed and dropped.

deepstream-app sets batch-size, interval, unique-id and model-engine-file of the group on the
nvinfer element, where they win over the config file; it reads the group's labelfile-path
itself. `effective_nvinfer` is the one merge; `heron config check` reports the rest.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from heron.core.config.cli import app
from heron.core.config.deepstream import GIE_KEYS, load_deepstream_app, read_deepstream_app
from heron.core.config.diagnostics import ConfigError, Diagnostics, Severity
from heron.core.config.gie import effective_nvinfer
from heron.core.config.models import Gie, Pipeline
from heron.core.config.nvinfer_models import ENGINE_NOT_RUN, ProcessMode
from heron.core.config.yaml_loader import load_pipeline_yaml, read_pipeline_yaml, to_yaml
from typer.testing import CliRunner

SOURCE_SINK = (
    "[source0]\nenable=1\ntype=1\ncamera-width=640\ncamera-height=480\ncamera-fps-n=30\n\n"
    "[sink0]\nenable=1\ntype=1\n\n"
)
NVINFER_KEYS = (
    "onnx-file=model.onnx\nlabelfile-path=labels.txt\nbatch-size=4\ninterval=3\n"
    "gie-unique-id=1\nnum-detected-classes=2\n"
)
runner = CliRunner()


def write_app(folder: Path, group: str, *, nvinfer: str = NVINFER_KEYS) -> Path:
    """app.txt with `group` as the [primary-gie] keys after enable and config-file, next to
    nvinfer.txt (`nvinfer` its [property] keys), model.onnx and labels.txt (Mask, No-Mask)."""
    (folder / "model.onnx").write_bytes(b"onnx")
    (folder / "labels.txt").write_text("Mask\nNo-Mask\n")
    (folder / "nvinfer.txt").write_text(f"[property]\n{nvinfer}")
    path = folder / "app.txt"
    path.write_text(f"{SOURCE_SINK}[primary-gie]\nenable=1\nconfig-file=nvinfer.txt\n{group}")
    return path


def line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def primary(pipeline: Pipeline) -> Gie:
    assert pipeline.primary_gie is not None
    return pipeline.primary_gie


def test_group_keys_win_over_the_nvinfer_config(tmp_path: Path) -> None:
    (tmp_path / "faces.txt").write_text("face\nbare\n")
    path = write_app(
        tmp_path,
        "batch-size=2\ninterval=0\ngie-unique-id=7\nlabelfile-path=faces.txt\n"
        "model-engine-file=model.engine\n",
    )

    gie = primary(read_deepstream_app(path)[0])
    config = effective_nvinfer(gie)

    prop = config.property
    assert (prop.batch_size, prop.interval, prop.gie_unique_id) == (2, 0, 7)  # interval=0 wins
    assert prop.labelfile_path == tmp_path / "faces.txt"
    assert prop.model_engine_file == tmp_path / "model.engine"
    assert config.labels == ["face", "bare"]
    assert gie.unique_id == 7
    # The file's own config is left as it was.
    assert gie.nvinfer is not None and gie.nvinfer.labels == ["Mask", "No-Mask"]
    assert gie.nvinfer.property.gie_unique_id == 1


def test_without_group_keys_the_nvinfer_config_stands(tmp_path: Path) -> None:
    gie = primary(read_deepstream_app(write_app(tmp_path, ""))[0])

    config = effective_nvinfer(gie)

    assert config.property.model_dump() == {
        **gie.nvinfer.property.model_dump(),  # type: ignore[union-attr]
        "process_mode": ProcessMode.PRIMARY,
        "input_tensor_from_meta": False,
    }
    assert config.labels == ["Mask", "No-Mask"]


def test_deepstream_app_forces_primary_mode_and_input_tensor_meta(tmp_path: Path) -> None:
    nvinfer = NVINFER_KEYS + "process-mode=2\ninput-tensor-from-meta=1\n"
    gie = primary(read_deepstream_app(write_app(tmp_path, "", nvinfer=nvinfer))[0])

    prop = effective_nvinfer(gie).property

    assert prop.process_mode is ProcessMode.PRIMARY
    assert prop.input_tensor_from_meta is False  # set on the element from the group's default


def test_group_labels_on_one_line_and_in_the_yaml_form(tmp_path: Path) -> None:
    (tmp_path / "faces.txt").write_text("face;bare\n")
    path = write_app(tmp_path, "labelfile-path=faces.txt\n")
    pipeline, _ = read_deepstream_app(path)
    assert effective_nvinfer(primary(pipeline)).labels == ["face", "bare"]

    again = tmp_path / "pipeline.yaml"
    again.write_text(to_yaml(pipeline))
    (tmp_path / "faces.txt").unlink()  # the YAML carries the labels it was written with
    reloaded, _ = read_pipeline_yaml(again)

    assert reloaded == pipeline
    assert effective_nvinfer(primary(reloaded)).labels == ["face", "bare"]


def test_yaml_group_reads_its_labels_file(tmp_path: Path) -> None:
    write_app(tmp_path, "")
    (tmp_path / "faces.txt").write_text("face\nbare\n")
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        "sources:\n  0: {type: camera_v4l2, enable: true, camera_width: 640, camera_height: 480,"
        " camera_fps_n: 30}\n"
        "sinks:\n  0: {type: fake, enable: true}\n"
        "primary_gie:\n  enable: true\n  config_file: nvinfer.txt\n"
        "  labelfile_path: faces.txt\n  gie_unique_id: 3\n"
    )

    config = effective_nvinfer(primary(read_pipeline_yaml(path)[0]))

    assert (config.labels, config.property.gie_unique_id) == (["face", "bare"], 3)
    (tmp_path / "faces.txt").write_text("face\n")
    _, diags = read_pipeline_yaml(path)
    [short] = [d for d in diags.items if "labels file has" in d.message]
    assert (short.line, short.field) == (
        line_of(path, "labelfile_path"),
        "primary_gie.labelfile_path",
    )


def test_engine_beside_an_onnx_file_is_reported_unused(tmp_path: Path) -> None:
    path = write_app(tmp_path, "model-engine-file=/engines/model_b4_gpu0_fp16.engine\n")

    result = runner.invoke(app, ["check", str(path)])

    assert result.exit_code == 0, result.output
    line = line_of(path, "model-engine-file=")
    expected = (
        f"{path}:{line}: warning: [primary-gie.model-engine-file] model-engine-file "
        "'/engines/model_b4_gpu0_fp16.engine' is not used: Heron cannot load a TensorRT engine "
        f"and runs the config's onnx-file '{tmp_path / 'model.onnx'}' instead"
    )
    assert expected in result.stderr


def test_engine_without_an_onnx_file_says_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "model.engine").write_bytes(b"engine")
    nvinfer = "model-engine-file=model.engine\nnum-detected-classes=2\n"
    path = write_app(tmp_path, "model-engine-file=model.engine\n", nvinfer=nvinfer)

    diags = Diagnostics()
    pipeline = load_deepstream_app(path, diags)  # warnings only: Triton may serve the engine

    assert pipeline is not None and primary(pipeline).nvinfer is not None
    found = [d for d in diags.items if ENGINE_NOT_RUN in d.message]
    in_group, in_config = sorted(found, key=lambda d: d.file.name)
    assert (in_group.file, in_group.line) == (path, line_of(path, "model-engine-file="))
    assert in_group.field == "primary-gie.model-engine-file"
    config_file = tmp_path / "nvinfer.txt"
    assert (in_config.file, in_config.line) == (config_file, 2)
    assert in_config.field == "property.model-engine-file"
    assert in_group.severity is in_config.severity is Severity.WARNING
    assert f"set onnx-file= in '{config_file}'" in in_group.message
    assert "backend.model_file" in in_group.message and "backend.kind: triton" in in_group.message


def test_missing_group_labels_file_is_reported_and_gives_no_labels(tmp_path: Path) -> None:
    path = write_app(tmp_path, "labelfile-path=gone.txt\n")

    pipeline, diags = read_deepstream_app(path)

    [missing] = [d for d in diags.items if "gone.txt" in d.message]
    assert (missing.severity, missing.line) == (Severity.WARNING, line_of(path, "labelfile-path"))
    assert missing.field == "primary-gie.labelfile-path"
    # The group's file replaces the config's, as in deepstream-app: no fallback to Mask/No-Mask.
    assert effective_nvinfer(primary(pipeline)).labels == []
    with pytest.raises(ConfigError, match=r"gone\.txt' does not exist"):
        read_deepstream_app(path, strict=True)


def test_group_labels_file_that_is_not_utf8_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "faces.txt").write_bytes(b"face\n\xffbare\n")
    path = write_app(tmp_path, "labelfile-path=faces.txt\n")

    with pytest.raises(ConfigError) as caught:
        read_deepstream_app(path)

    [error] = [d for d in caught.value.diagnostics if d.severity is Severity.ERROR]
    assert error.file == tmp_path / "faces.txt"
    assert "labels file is not valid UTF-8" in error.message


def test_group_labels_count_is_checked_on_the_groups_line(tmp_path: Path) -> None:
    (tmp_path / "faces.txt").write_text("face\n")
    path = write_app(tmp_path, "labelfile-path=faces.txt\n")

    _, diags = read_deepstream_app(path)

    [short] = [d for d in diags.items if "labels file has" in d.message]
    assert (short.file, short.line) == (path, line_of(path, "labelfile-path"))
    assert short.field == "primary-gie.labelfile-path"
    assert "class 1 gets no label" in short.message


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("batch-size=0", "greater than or equal to 1"),
        ("batch-size=1025", "less than or equal to 1024"),
        ("gie-unique-id=0", "greater than or equal to 1"),
        ("interval=-1", "greater than or equal to 0"),
        ("labels=a;b", "unknown key 'labels'"),
    ],
)
def test_malformed_group_keys_are_named_with_their_line(
    tmp_path: Path, key: str, message: str
) -> None:
    path = write_app(tmp_path, f"{key}\n")

    result = runner.invoke(app, ["check", str(path)])

    finding = next(line for line in result.stderr.splitlines() if message in line)
    assert finding.startswith(f"{path}:{line_of(path, key)}: "), result.stderr


def test_nvinferserver_is_refused_without_reading_its_config(tmp_path: Path) -> None:
    path = write_app(tmp_path, "plugin-type=1\n", nvinfer="infer_config {\n  unique_id: 1\n}\n")

    with pytest.raises(ConfigError) as caught:
        read_deepstream_app(path)

    [error] = caught.value.diagnostics
    assert (error.file, error.line) == (path, line_of(path, "plugin-type"))
    assert "plugin-type=1 (nvinferserver) is not supported" in error.message


# One value per key of [primary-gie] that differs from its default. A key the model gains
# must be added here, with how Heron honours it: the test then asks for the proof.
SAMPLES = {
    "enable": None,  # structural: enable=0 skips the group (tests/core/config/test_gie_configs)
    "config_file": None,  # structural: the nvinfer config everything else applies to
    "bbox_border_color": None,  # the overlay's colours (tests/overlay)
    "bbox_bg_color": None,
    "gpu_id": "gpu-id=1",
    "plugin_type": "plugin-type=1",
    "batch_size": "batch-size=2",
    "interval": "interval=1",
    "gie_unique_id": "gie-unique-id=9",
    "operate_on_gie_id": "operate-on-gie-id=1",
    "operate_on_class_ids": "operate-on-class-ids=0",
    "model_engine_file": "model-engine-file=model.engine",
    "labelfile_path": "labelfile-path=faces.txt",
    "input_tensor_meta": "input-tensor-meta=1",
    "infer_raw_output_dir": "infer-raw-output-dir=raw",
    "nvbuf_memory_type": "nvbuf-memory-type=2",
}


def test_every_group_key_is_applied_or_reported(tmp_path: Path) -> None:
    assert set(SAMPLES) == set(GIE_KEYS.values())  # bbox-*-colorN: the overlay's, like above
    for field, key in SAMPLES.items():
        if key is None:
            continue
        folder = tmp_path / field
        folder.mkdir()
        (folder / "faces.txt").write_text("face\nbare\n")
        before = effective_nvinfer(primary(read_deepstream_app(write_app(folder, ""))[0]))
        path = write_app(folder, f"{key}\n")
        diags = Diagnostics()
        pipeline = load_deepstream_app(path, diags)
        on_its_line = [d for d in diags.items if (d.file, d.line) == (path, line_of(path, key))]
        if pipeline is None:  # refused: with an error on the key's line
            assert [d for d in on_its_line if d.severity is Severity.ERROR], (field, diags.items)
            continue
        applied = effective_nvinfer(primary(pipeline)) != before
        assert applied or on_its_line, f"{key}: neither applied nor reported"


def test_yaml_form_lists_the_group_labels(tmp_path: Path) -> None:
    (tmp_path / "faces.txt").write_text("face\nbare\n")
    pipeline, _ = read_deepstream_app(write_app(tmp_path, "labelfile-path=faces.txt\n"))

    data = yaml.safe_load(to_yaml(pipeline))

    assert data["primary_gie"]["labels"] == ["face", "bare"]
    assert data["primary_gie"]["nvinfer"]["labels"] == ["Mask", "No-Mask"]
    path = tmp_path / "p.yaml"
    path.write_text(to_yaml(pipeline))
    assert load_pipeline_yaml(path, Diagnostics()) == pipeline
