"""NVIDIA-AI-IOT/face-mask-detection's configs and specs, as published, load and check clean.

The files are copied unchanged into tests/fixtures/{deepstream,tao}/face-mask-detection (see the
README there). They name models, clips and datasets on their author's machine, so warnings about
referenced files that do not exist are expected; any other finding must be one listed here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from heron.core.config import tao
from heron.core.config.cli import app
from heron.core.config.deepstream import read_deepstream_app
from heron.core.config.diagnostics import ConfigError, Diagnostics, Severity
from heron.core.config.nvinfer import read_nvinfer
from heron.core.config.nvinfer_models import ENGINE_NOT_RUN
from heron.core.config.sources import MultiUriSource
from heron.core.config.yaml_loader import load_pipeline_yaml, to_yaml
from typer.testing import CliRunner

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
DS = FIXTURES / "deepstream" / "face-mask-detection"
TAO = FIXTURES / "tao" / "face-mask-detection"
VIDEO_APP = DS / "deepstream_app_source1_video_masknet_gpu.txt"
CAMERA_APP = DS / "deepstream_app_source1_camera_masknet_gpu.txt"
NVINFER = DS / "config_infer_primary_masknet_gpu.txt"
CLIP = "/mnt/8c3f68c9-a08a-400b-8c80-99c5fee26a06/face-mask-videos/C0074.MP4"

LABELS_WARNING = (
    "the labels file has 3 labels ['mask', 'no-mask', 'default'] but num-detected-classes is 2: "
    "['default'] name no class of the model and are never used"
)
# The sample's EGL sink carries file-sink keys; headless, it runs as a fake sink.
EGL_SINK_WARNINGS = [
    "type=2 (EGL window) needs a display and none is available",
    *(f"key {k!r} does not apply to a type=1 (fake) sink" for k in ("container", "codec")),
    *(f"key {k!r} does not apply to a type=1 (fake) sink" for k in ("bitrate", "output-file")),
]
# The apps' [primary-gie] names a TensorRT engine and the nvinfer config an .etlt, no ONNX.
ENGINE = (
    "/mnt/8c3f68c9-a08a-400b-8c80-99c5fee26a06/detectnet_v2_models/detectnet_4K-fddb-12/"
    "resnet18_RGB960_detector_fddb_12_int8.etlt_b1_gpu0_int8.engine"
)
ENGINE_WARNING = f"[primary-gie.model-engine-file] model-engine-file {ENGINE!r} {ENGINE_NOT_RUN}"
# The detector's config sets a classifier's key, which nothing reads (DeepStream neither).
CLASSIFIER_WARNING = "[property.classifier-threshold] classifier-threshold has no effect in Heron"
# Findings other than "file ... does not exist", per file.
EXPECTED: dict[Path, list[str]] = {
    NVINFER: [LABELS_WARNING, CLASSIFIER_WARNING],
    CAMERA_APP: [LABELS_WARNING, CLASSIFIER_WARNING, ENGINE_WARNING, *EGL_SINK_WARNINGS],
    VIDEO_APP: [LABELS_WARNING, CLASSIFIER_WARNING, ENGINE_WARNING, *EGL_SINK_WARNINGS],
    TAO / "detectnet_v2_train_resnet18_kitti.txt": [],
    TAO / "detectnet_v2_retrain_resnet18_kitti.txt": [],
    TAO / "detectnet_v2_tfrecords_kitti_trainval.txt": [],
    TAO / "detectnet_v2_tfrecords_kitti_val.txt": [],
    TAO / "detectnet_v2_inference_kitti_etlt.txt": [tao.INFERENCE_SPEC_NOTE],
    TAO / "detectnet_v2_inference_kitti_tlt.txt": [tao.INFERENCE_SPEC_NOTE],
}

runner = CliRunner()


@pytest.fixture(autouse=True)
def headless(monkeypatch: pytest.MonkeyPatch) -> None:
    """The EGL-sink warning depends on a display; make it the same everywhere."""
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)


def test_every_published_config_is_a_fixture() -> None:
    published = {*DS.glob("*.txt"), *TAO.glob("*.txt")} - {DS / "labels_masknet.txt"}
    assert published == set(EXPECTED)


@pytest.mark.parametrize("path", list(EXPECTED), ids=lambda p: p.name)
def test_config_check_passes_with_only_expected_warnings(path: Path) -> None:
    result = runner.invoke(app, ["check", str(path)])

    assert result.exit_code == 0, result.output
    findings = [line for line in result.stderr.splitlines() if line.strip()]
    assert all(": warning: " in line for line in findings), result.stderr
    missing = ("does not exist", "matches no file")
    others = [line for line in findings if not any(m in line for m in missing)]
    for expected in EXPECTED[path]:
        assert sum(expected in line for line in others) == 1, (expected, result.stderr)
    assert len(others) == len(EXPECTED[path]), result.stderr


def test_one_slash_file_uri_is_read_as_the_absolute_path() -> None:
    pipeline, diags = read_deepstream_app(VIDEO_APP)

    source = pipeline.sources[0]
    assert isinstance(source, MultiUriSource)
    assert source.uri == f"file://{CLIP}"  # `file:/mnt/...` in the file
    [missing] = [d for d in diags.items if d.field == "source0.uri"]
    assert (missing.severity, missing.line) == (Severity.WARNING, 27)
    assert missing.message == f"file {CLIP!r} named by the URI does not exist"


def test_extra_label_is_a_warning_on_the_labelfile_line() -> None:
    config, diags = read_nvinfer(NVINFER)

    assert config.labels == ["mask", "no-mask", "default"]
    assert [config.class_name(i) for i in range(2)] == ["mask", "no-mask"]
    [found] = [d for d in diags.items if "labels file has" in d.message]
    assert (found.severity, found.file, found.line) == (Severity.WARNING, NVINFER, 14)
    assert (found.field, found.message) == ("property.labelfile-path", LABELS_WARNING)


def test_labels_warning_survives_the_yaml_form(tmp_path: Path) -> None:
    pipeline, _ = read_deepstream_app(VIDEO_APP)
    path = tmp_path / "pipeline.yaml"
    path.write_text(to_yaml(pipeline, reveal_secrets=True))

    diags = Diagnostics()
    again = load_pipeline_yaml(path, diags)

    assert again == pipeline
    [found] = [d for d in diags.items if "labels file has" in d.message]
    labels_line = path.read_text().splitlines().index("    labels: [mask, no-mask, default]") + 1
    assert (found.severity, found.line, found.field) == (
        Severity.WARNING,
        labels_line,
        "primary_gie.nvinfer.labels",
    )


def test_tao_specs_load_as_their_kinds() -> None:
    kinds = {
        "detectnet_v2_train_resnet18_kitti.txt": "experiment",
        "detectnet_v2_retrain_resnet18_kitti.txt": "experiment",
        "detectnet_v2_tfrecords_kitti_trainval.txt": "dataset_convert",
        "detectnet_v2_tfrecords_kitti_val.txt": "dataset_convert",
    }
    for name, kind in kinds.items():
        spec = tao.load_any_spec(TAO / name, check_paths=False)
        assert (spec.kind, spec.diagnostics) == (kind, []), name


def test_inference_spec_is_named_not_loaded() -> None:
    path = TAO / "detectnet_v2_inference_kitti_tlt.txt"

    with pytest.raises(ConfigError) as caught:
        tao.load_any_spec(path)

    [error] = caught.value.diagnostics
    assert "this is a TAO inference spec, which Heron does not load" in error.message
    [note] = tao.check_inference_spec(path)
    assert (note.severity, note.line, note.message) == (
        Severity.WARNING,
        1,
        tao.INFERENCE_SPEC_NOTE,
    )


def test_broken_inference_spec_is_an_error_on_its_line(tmp_path: Path) -> None:
    path = tmp_path / "infer.txt"
    text = (TAO / "detectnet_v2_inference_kitti_etlt.txt").read_text()
    path.write_text(text.replace("  batch_size: 16\n", "  batch_size 16 :\n", 1))

    result = runner.invoke(app, ["check", str(path)])

    line = text.splitlines().index("  batch_size: 16") + 1
    assert result.exit_code == 1
    assert f"{path}:{line}: error:" in result.stderr


def test_normalized_output_shows_the_canonical_uri() -> None:
    result = runner.invoke(app, ["check", str(VIDEO_APP)])

    [document] = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert document["sources"][0]["uri"] == f"file://{CLIP}"
