"""DetectNet_v2 outputs → objects on the original frame, with nvinfer's per-class settings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from heron.core.config.deepstream import read_deepstream_app
from heron.core.config.nvinfer import read_nvinfer
from heron.inference.backends.base import ModelInfo
from heron.inference.detector import DetectorHead, bbox_coding, cluster_params, find_outputs
from heron.inference.errors import ModelMismatchError
from heron.inference.geometry import frame_geometry, place
from heron.inference.pipeline import primary_detector
from heron.postprocess import ClusterMode, encode_bbox

from tests.inference.conftest import write_nvinfer
from tests.inference.detector import BBOX_NAME, COV_NAME

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "deepstream"
INFO = ModelInfo("det", "3", "input_1", (3, 544, 960), (COV_NAME, BBOX_NAME), 0)


def test_class_attrs_become_cluster_params() -> None:
    config, _ = read_nvinfer(FIXTURES / "config_infer_primary_facemask.txt")
    mask, no_mask = cluster_params(config, 2)
    assert mask.cluster_mode is no_mask.cluster_mode is ClusterMode.HYBRID
    assert (mask.pre_cluster_threshold, mask.eps, mask.dbscan_min_score) == (0.4, 0.7, 0.7)
    assert (no_mask.pre_cluster_threshold, no_mask.eps) == (0.3, 0.5)
    assert mask.topk == no_mask.topk == 20 and mask.min_boxes == 1
    assert mask.detected_min_w == no_mask.detected_min_h == 16


@pytest.mark.parametrize(
    ("wanted", "message"),
    [
        (["output_cov/Sigmoid", "nope"], r"output-blob-names \['nope'\] are not outputs"),
        (["output_cov/Sigmoid"], "expected one coverage .* and one bbox output"),
    ],
)
def test_outputs_that_are_not_a_detectnet_pair(wanted: list[str], message: str) -> None:
    with pytest.raises(ModelMismatchError, match=message):
        find_outputs(INFO, wanted)


def test_bbox_coding_comes_from_settings_then_onnx_metadata() -> None:
    meta = {"heron.settings": json.dumps({"model": {"bbox_scale": 10.0, "bbox_offset": 0.0}})}
    info = ModelInfo("det", "1", "input_1", (3, 544, 960), (COV_NAME, BBOX_NAME), 0, meta)
    coding = bbox_coding(info, (34, 60), None, None)
    assert (coding.stride, coding.scale, coding.offset) == (16, 10.0, 0.0)
    assert bbox_coding(info, (34, 60), 35.0, None).scale == 35.0
    assert bbox_coding(INFO, (34, 60), None, None).scale == 35.0  # TAO's default
    with pytest.raises(ModelMismatchError, match="do not share one integer stride"):
        bbox_coding(INFO, (34, 61), None, None)


def one_object_outputs(box: np.ndarray, class_id: int) -> dict[str, np.ndarray]:
    """Grid outputs of a 960x544 network that see `box` (input pixels) in a 3x3 patch of cells."""
    cov = np.zeros((1, 2, 34, 60), np.float32)
    bbox = np.zeros((1, 8, 34, 60), np.float32)
    cx, cy = int((box[0] + box[2]) / 32), int((box[1] + box[3]) / 32)
    cov[0, class_id, cy - 1 : cy + 2, cx - 1 : cx + 2] = 0.9
    encoded = encode_bbox(box[None], 60, 34)[0]
    rows, cols = slice(cy - 1, cy + 2), slice(cx - 1, cx + 2)
    bbox[0, 4 * class_id : 4 * class_id + 4, rows, cols] = encoded[:, rows, cols]
    return {COV_NAME: cov, BBOX_NAME: bbox}


@pytest.mark.parametrize("class_id", [0, 1])
def test_objects_land_on_the_source_frame(tmp_path: Path, class_id: int) -> None:
    """Source 1280x720 → muxer 640x480 (stretched) → network 960x544 (letterbox, centred)."""
    nvinfer = write_nvinfer(tmp_path, tmp_path / "m.onnx", extra="infer-dims=3;544;960")
    config, _ = read_nvinfer(nvinfer)
    head = DetectorHead(config, INFO)
    muxer = place((1280, 720), (640, 480), keep_aspect=False, symmetric=False)
    network = place((640, 480), (960, 544), keep_aspect=True, symmetric=True)
    source_box = np.array([200.0, 100.0, 600.0, 500.0])
    sx, sy = muxer.scale_x * network.scale_x, muxer.scale_y * network.scale_y
    net_box = np.array(
        [
            source_box[0] * sx + network.left,
            source_box[1] * sy + network.top,
            source_box[2] * sx + network.left,
            source_box[3] * sy + network.top,
        ],
        np.float32,
    )
    (found,) = head.detections(
        one_object_outputs(net_box, class_id), [frame_geometry(muxer, network)]
    )
    (obj,) = head.objects(found)
    assert obj.class_id == class_id and obj.label == ("Mask", "No-Mask")[class_id]
    assert obj.confidence == pytest.approx(0.9) and obj.component_id == 1
    got = [
        obj.bbox.left,
        obj.bbox.top,
        obj.bbox.left + obj.bbox.width,
        obj.bbox.top + obj.bbox.height,
    ]
    np.testing.assert_allclose(got, source_box, atol=0.05)


@pytest.mark.parametrize("class_id", [0, 1])
def test_objects_carry_the_primary_gie_id_and_labels(tmp_path: Path, class_id: int) -> None:
    """A deepstream-app config's [primary-gie] gie-unique-id and labelfile-path win over the
    nvinfer config's 1 and Mask/No-Mask: the objects say so."""
    write_nvinfer(tmp_path, tmp_path / "m.onnx", extra="infer-dims=3;544;960")
    (tmp_path / "faces.txt").write_text("face\nbare\n")
    app = tmp_path / "app.txt"
    app.write_text(
        "[source0]\nenable=1\ntype=1\ncamera-width=960\ncamera-height=544\n"
        "camera-fps-n=30\n\n[sink0]\nenable=1\ntype=1\n\n"
        "[primary-gie]\nenable=1\nconfig-file=nvinfer.txt\ngie-unique-id=7\n"
        "labelfile-path=faces.txt\n"
    )
    detector = primary_detector(read_deepstream_app(app)[0], app)
    head = DetectorHead(detector.nvinfer, INFO)
    box = np.array([100.0, 100.0, 300.0, 300.0], np.float32)
    frame = frame_geometry(None, place((960, 544), (960, 544), keep_aspect=False, symmetric=False))

    (found,) = head.detections(one_object_outputs(box, class_id), [frame])
    (obj,) = head.objects(found)

    assert (obj.component_id, obj.label) == (7, ("face", "bare")[class_id])


def test_filter_out_class_ids_drops_a_class(tmp_path: Path) -> None:
    extra = "infer-dims=3;544;960\nfilter-out-class-ids=1"
    config, _ = read_nvinfer(write_nvinfer(tmp_path, tmp_path / "m.onnx", extra=extra))
    head = DetectorHead(config, INFO)
    box = np.array([100.0, 100.0, 300.0, 300.0], np.float32)
    frame = frame_geometry(None, place((960, 544), (960, 544), keep_aspect=False, symmetric=False))
    assert len(head.detections(one_object_outputs(box, 0), [frame])[0]) == 1
    assert len(head.detections(one_object_outputs(box, 1), [frame])[0]) == 0


def test_class_count_must_match_the_config(tmp_path: Path) -> None:
    config, _ = read_nvinfer(write_nvinfer(tmp_path, tmp_path / "m.onnx"))
    head = DetectorHead(config, INFO)
    outputs = {
        COV_NAME: np.zeros((1, 3, 34, 60), np.float32),
        BBOX_NAME: np.zeros((1, 12, 34, 60), np.float32),
    }
    frame = frame_geometry(None, place((960, 544), (960, 544), keep_aspect=False, symmetric=False))
    with pytest.raises(ModelMismatchError, match="num-detected-classes is 2 but"):
        head.detections(outputs, [frame])


def test_boxes_reaching_into_padding_end_at_the_frame_edge(tmp_path: Path) -> None:
    """480x544 frame centred in 960x544 (240 columns of padding left and right)."""
    config, _ = read_nvinfer(write_nvinfer(tmp_path, tmp_path / "m.onnx"))
    head = DetectorHead(config, INFO)
    network = place((480, 544), (960, 544), keep_aspect=True, symmetric=True)
    assert (network.left, network.size) == (240, (480, 544))
    box = np.array([200.0, 100.0, 400.0, 300.0], np.float32)  # 40 columns in the padding
    (found,) = head.detections(one_object_outputs(box, 0), [frame_geometry(None, network)])
    np.testing.assert_allclose(found.xyxy, [[0.0, 100.0, 160.0, 300.0]], atol=0.05)
