"""The nvinfer loader on the reference face-mask config: values, defaults, labels, secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from heron.core.config.diagnostics import ConfigError, Diagnostics
from heron.core.config.nvinfer import load_nvinfer, read_labels, read_nvinfer
from heron.core.config.nvinfer_models import (
    ClassAttrs,
    ClusterMode,
    ColorFormat,
    NetworkMode,
    NetworkType,
    NvInferConfig,
)

from tests.core.config.deepstream_helpers import NVINFER, copy_fixtures, edit


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return copy_fixtures(tmp_path, with_models=True)


def test_reference_config_is_normalized(folder: Path) -> None:
    config, diags = read_nvinfer(folder / NVINFER)

    prop = config.property
    models = folder.parents[1] / "models" / "facemask"
    assert prop.network_mode is NetworkMode.INT8
    assert prop.cluster_mode is ClusterMode.HYBRID
    assert prop.network_type is NetworkType.DETECTOR
    assert prop.model_color_format is ColorFormat.RGB
    assert prop.num_detected_classes == 2
    assert prop.batch_size == 4
    assert prop.net_scale_factor == pytest.approx(1 / 255)
    assert prop.offsets == [0.0, 0.0, 0.0]
    assert prop.input_dims == [3, 544, 960, 0]  # the inline comment after it is dropped
    assert prop.output_blob_names == ["output_bbox/BiasAdd", "output_cov/Sigmoid"]
    assert prop.tlt_encoded_model == models / "resnet18_detector.etlt"
    assert prop.int8_calib_file == models / "calibration.bin"
    assert prop.labelfile_path == folder / "labels_facemask.txt"
    assert config.labels == ["Mask", "No-Mask"]
    assert prop.tlt_model_key is not None
    assert prop.tlt_model_key.get_secret_value() == "nvidia_tlt"
    # The engine is built on first run: only its folder has to exist, and it does here.
    assert diags.items == []


def test_class_attrs_merge_per_class_over_all(folder: Path) -> None:
    config, _ = read_nvinfer(folder / NVINFER)

    everyone = config.class_attrs_all
    assert (everyone.pre_cluster_threshold, everyone.eps, everyone.min_boxes) == (0.2, 0.7, 1)
    assert (everyone.nms_iou_threshold, everyone.topk) == (0.5, 20)
    mask, no_mask = config.class_attrs[0], config.class_attrs[1]
    assert (mask.pre_cluster_threshold, mask.eps, mask.dbscan_min_score) == (0.4, 0.7, 0.7)
    assert (no_mask.pre_cluster_threshold, no_mask.eps, no_mask.dbscan_min_score) == (0.3, 0.5, 0)
    assert mask.min_boxes == no_mask.min_boxes == 1  # from [class-attrs-all]
    assert mask.topk == no_mask.topk == 20
    assert (mask.detected_min_w, mask.detected_min_h, mask.detected_max_w) == (16, 16, 0)


def test_defaults_are_deepstreams(tmp_path: Path) -> None:
    path = tmp_path / "minimal.txt"
    path.write_text("[property]\nonnx-file=m.onnx\nnum-detected-classes=3\n")
    (tmp_path / "m.onnx").write_bytes(b"onnx")

    config, _ = read_nvinfer(path)

    assert config.class_attrs_all == ClassAttrs()
    assert (ClassAttrs().pre_cluster_threshold, ClassAttrs().nms_iou_threshold) == (0.2, 0.3)
    assert (ClassAttrs().topk, ClassAttrs().post_cluster_threshold) == (-1, 0.0)
    assert sorted(config.class_attrs) == [0, 1, 2]
    assert config.property.network_mode is NetworkMode.FP32
    assert config.property.cluster_mode is ClusterMode.GROUP_RECTANGLES
    assert config.property.gie_unique_id == 1


def test_enable_dbscan_maps_to_cluster_mode_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "old.txt"
    path.write_text("[property]\nonnx-file=/m.onnx\nnum-detected-classes=1\nenable-dbscan=1\n")

    diags = Diagnostics()
    config = load_nvinfer(path, diags)

    assert config is not None
    assert config.property.cluster_mode is ClusterMode.DBSCAN
    assert any("use cluster-mode=1" in d.message and d.line == 4 for d in diags.warnings)


def test_is_classifier_sets_network_type_and_labels_are_per_output(tmp_path: Path) -> None:
    (tmp_path / "labels.txt").write_text("red;green;blue\nsedan;suv\n")
    path = tmp_path / "sgie.txt"
    path.write_text(
        "[property]\nonnx-file=/m.onnx\nis-classifier=1\nprocess-mode=2\n"
        "labelfile-path=labels.txt\nclassifier-threshold=0.51\n"
    )

    config, _ = read_nvinfer(path)

    assert config.property.network_type is NetworkType.CLASSIFIER
    assert config.classifier_labels == [["red", "green", "blue"], ["sedan", "suv"]]
    assert config.labels == []


@pytest.mark.parametrize(
    ("text", "labels"),
    [
        ("Mask\nNo-Mask\n", ["Mask", "No-Mask"]),
        ("Mask;No-Mask\n", ["Mask", "No-Mask"]),  # all classes on one line
        ("Mask\r\nNo-Mask\r\n\r\n", ["Mask", "No-Mask"]),
    ],
)
def test_detector_labels_file_forms(tmp_path: Path, text: str, labels: list[str]) -> None:
    (tmp_path / "labels.txt").write_bytes(text.encode())
    path = tmp_path / "pgie.txt"
    path.write_text(
        "[property]\nonnx-file=/m.onnx\nnum-detected-classes=2\nlabelfile-path=labels.txt\n"
    )

    config, _ = read_nvinfer(path)

    assert config.labels == labels


def test_labels_file_blank_line_is_flagged(tmp_path: Path) -> None:
    path = tmp_path / "labels.txt"
    path.write_text("Mask\n\nNo-Mask\n")
    diags = Diagnostics()

    assert read_labels(path, diags) == [["Mask"], [""], ["No-Mask"]]
    assert [d.line for d in diags.warnings] == [2]


def test_missing_referenced_files_warn_or_fail_with_strict(tmp_path: Path) -> None:
    folder = copy_fixtures(tmp_path)  # no model files
    path = folder / NVINFER

    _, diags = read_nvinfer(path)
    with pytest.raises(ConfigError) as raised:
        read_nvinfer(path, strict=True)

    missing = {d.field for d in diags.warnings}
    assert {"property.tlt-encoded-model", "property.int8-calib-file"} <= missing
    assert {d.field for d in raised.value.diagnostics if d.severity.value == "error"} >= missing


def test_model_key_is_never_in_findings_or_repr(folder: Path) -> None:
    edit(folder / NVINFER, b"batch-size=4", b"batch-size=four")
    diags = Diagnostics()
    load_nvinfer(folder / NVINFER, diags)
    config = NvInferConfig.model_validate(
        {"property": {"onnx_file": "/m.onnx", "num_detected_classes": 1, "tlt_model_key": "k3y"}}
    )

    assert diags.errors
    assert all("nvidia_tlt" not in str(d) for d in diags.items)
    assert "k3y" not in repr(config) and "k3y" not in str(config.model_dump(mode="json"))
