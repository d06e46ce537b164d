"""evaluate(): TAO semantics on toy cases worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from heron.evaluation.ap import (
    APMode,
    EvaluationBoxConfig,
    EvaluationConfig,
    GroundTruth,
    evaluate,
    plot_pr_curves,
)
from heron.postprocess import ClusterParams, Detections, DetectionsError, encode_bbox, postprocess
from pydantic import ValidationError

NAMES = ["Mask", "No-Mask"]
BOX = [100.0, 100.0, 200.0, 200.0]
FAR = [500.0, 300.0, 560.0, 380.0]


def _det(rows: list[tuple[list[float], float, int]]) -> Detections:
    if not rows:
        return Detections.empty()
    return Detections([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])


def _gt(rows: list[tuple[list[float], int]]) -> GroundTruth:
    if not rows:
        return GroundTruth.empty()
    return GroundTruth.from_arrays([r[0] for r in rows], [r[1] for r in rows])


def _config(mode: str = "INTEGRATE", **kw: object) -> EvaluationConfig:
    return EvaluationConfig(
        minimum_detection_ground_truth_overlap={"Mask": 0.5, "No-Mask": 0.5},
        average_precision_mode=APMode(mode),
        **kw,
    )


@pytest.mark.parametrize("mode", ["SAMPLE", "INTEGRATE"])
def test_one_perfect_detection_scores_one(mode: str) -> None:
    report = evaluate([_det([(BOX, 0.9, 0)])], [_gt([(BOX, 0)])], ["Mask"], _config(mode))
    (mask,) = report.classes
    assert mask.average_precision == 1.0 and report.mean_average_precision == 1.0
    assert (mask.true_positives, mask.false_positives, mask.num_ground_truth) == (1, 0, 1)


def test_false_positive_above_a_true_positive_halves_ap() -> None:
    pred = _det([(FAR, 0.95, 0), (BOX, 0.9, 0)])
    report = evaluate([pred], [_gt([(BOX, 0)])], ["Mask"], _config())
    assert report.classes[0].average_precision == pytest.approx(0.5)
    assert report.classes[0].precision == pytest.approx([0.0, 0.5])
    assert report.classes[0].recall == pytest.approx([0.0, 1.0])
    assert report.classes[0].scores == pytest.approx([0.95, 0.9])


def test_sample_and_integrate_differ_as_computed_by_hand() -> None:
    # Two images, one box each; ranks: TP (0.9), FP (0.8), TP (0.7).
    preds = [_det([(BOX, 0.9, 0), (FAR, 0.8, 0)]), _det([(BOX, 0.7, 0)])]
    gts = [_gt([(BOX, 0)]), _gt([(BOX, 0)])]
    sample = evaluate(preds, gts, ["Mask"], _config("SAMPLE")).mean_average_precision
    integrate = evaluate(preds, gts, ["Mask"], _config("INTEGRATE")).mean_average_precision
    assert sample == pytest.approx((6 + 5 * 2 / 3) / 11)
    assert integrate == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_a_second_detection_of_the_same_box_is_a_false_positive() -> None:
    pred = _det([(BOX, 0.9, 0), ([102.0, 101.0, 201.0, 199.0], 0.8, 0)])
    report = evaluate([pred], [_gt([(BOX, 0)])], ["Mask"], _config())
    assert (report.classes[0].true_positives, report.classes[0].false_positives) == (1, 1)
    assert report.classes[0].average_precision == 1.0  # the duplicate ranks below recall 1


@pytest.mark.parametrize(("overlap", "tp"), [(0.5, 1), (0.7, 0)])
def test_minimum_overlap_is_per_class(overlap: float, tp: int) -> None:
    closer = [120.0, 100.0, 220.0, 200.0]  # IoU with BOX: 80 / 120 = 0.667
    config = EvaluationConfig(minimum_detection_ground_truth_overlap={"Mask": overlap})
    report = evaluate([_det([(closer, 0.9, 0)])], [_gt([(BOX, 0)])], ["Mask"], config)
    assert report.classes[0].true_positives == tp


def test_dont_care_ground_truth_neither_misses_nor_makes_false_positives() -> None:
    tiny = [300.0, 300.0, 310.0, 308.0]  # 8 px tall: outside minimum_height 20
    limits = {"Mask": EvaluationBoxConfig(minimum_height=20)}
    pred = _det([(tiny, 0.95, 0), (BOX, 0.9, 0)])
    report = evaluate(
        [pred], [_gt([(BOX, 0), (tiny, 0)])], ["Mask"], _config(evaluation_box_config=limits)
    )
    mask = report.classes[0]
    assert mask.average_precision == 1.0
    assert (mask.num_ground_truth, mask.num_dont_care) == (1, 1)
    assert (mask.true_positives, mask.false_positives) == (1, 0)


def test_detection_matched_to_dont_care_box_is_ignored_not_counted() -> None:
    big = [0.0, 0.0, 400.0, 400.0]
    limits = {"Mask": EvaluationBoxConfig(maximum_height=300, maximum_width=300)}
    # The detection is in range (300 px), its best match is the too-large ground truth.
    pred = _det([([0.0, 0.0, 300.0, 300.0], 0.95, 0), (BOX, 0.5, 0)])
    report = evaluate(
        [pred], [_gt([(big, 0), (BOX, 0)])], ["Mask"], _config(evaluation_box_config=limits)
    )
    mask = report.classes[0]
    assert (mask.num_ignored, mask.num_detections) == (1, 2)
    assert (mask.true_positives, mask.false_positives) == (1, 0)
    assert mask.average_precision == 1.0


def test_detections_outside_the_box_range_are_ignored() -> None:
    tiny = [300.0, 300.0, 305.0, 305.0]
    limits = {"Mask": EvaluationBoxConfig(minimum_width=10)}
    pred = _det([(tiny, 0.99, 0), (BOX, 0.9, 0)])
    report = evaluate([pred], [_gt([(BOX, 0)])], ["Mask"], _config(evaluation_box_config=limits))
    assert report.classes[0].false_positives == 0
    assert report.classes[0].num_detections == 1


def test_map_is_the_mean_over_classes_and_classes_without_boxes_score_zero() -> None:
    preds = [_det([(BOX, 0.9, 0), (FAR, 0.8, 1)])]
    report = evaluate(preds, [_gt([(BOX, 0), ([10, 10, 20, 20], 1)])], NAMES, _config())
    assert report.average_precisions == {"Mask": 1.0, "No-Mask": 0.0}
    assert report.mean_average_precision == 0.5
    no_gt = evaluate([_det([])], [_gt([(BOX, 0)])], NAMES, _config())
    assert no_gt.classes[1].num_ground_truth == 0
    assert no_gt.classes[1].average_precision == 0.0


def test_report_json_and_pr_plot(tmp_path: Path) -> None:
    preds = [_det([(BOX, 0.9, 0), (FAR, 0.8, 1)]), _det([(BOX, 0.7, 1)])]
    gts = [_gt([(BOX, 0)]), _gt([(BOX, 1)])]
    report = evaluate(preds, gts, NAMES, _config())
    data = json.loads(report.to_json())
    assert data["mean_average_precision"] == pytest.approx(report.mean_average_precision)
    assert [c["name"] for c in data["classes"]] == NAMES
    assert data["classes"][1]["precision"] == pytest.approx([0.0, 0.5])
    assert data["config"]["average_precision_mode"] == "INTEGRATE"
    path = plot_pr_curves(report, tmp_path / "curves" / "pr.png")
    header = path.read_bytes()[:8]
    assert header == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_the_summary_leaves_the_curves_to_their_own_file() -> None:
    preds = [_det([(BOX, 0.9, 0), (FAR, 0.8, 1)]), _det([(BOX, 0.7, 1)])]
    report = evaluate(preds, [_gt([(BOX, 0)]), _gt([(BOX, 1)])], NAMES, _config())
    summary = json.loads(report.summary_json(curves_file="eval.curves.json"))
    assert summary["curves_file"] == "eval.curves.json"
    for c in summary["classes"]:
        assert not {"precision", "recall", "scores"} & set(c) and "average_precision" in c
    assert summary["mean_average_precision"] == pytest.approx(report.mean_average_precision)
    curves = json.loads(report.curves_json())
    assert set(curves) == set(NAMES)
    no_mask = {"precision": [0.0, 0.5], "recall": [0.0, 1.0], "scores": [0.8, 0.7]}
    assert curves["No-Mask"] == no_mask


def test_inputs_that_do_not_line_up_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"one entry per image.*2 predictions and 1 ground"):
        evaluate([_det([]), _det([])], [_gt([])], NAMES, _config())
    with pytest.raises(ValueError, match=r"predictions\[0\] has class id 2.*only 2 classes"):
        evaluate([_det([(BOX, 0.9, 2)])], [_gt([])], NAMES, _config())
    with pytest.raises(ValueError, match=r"ground_truth\[0\] has class id 5"):
        evaluate([_det([])], [_gt([(BOX, 5)])], NAMES, _config())
    with pytest.raises(ValueError, match="no entry for class 'Helmet'"):
        evaluate([_det([])], [_gt([])], ["Helmet"], _config())


def test_malformed_ground_truth_is_rejected() -> None:
    with pytest.raises(DetectionsError, match=r"ground truth boxes must have shape \(N, 4\)"):
        GroundTruth.from_arrays([[1, 2, 3]], [0])
    with pytest.raises(DetectionsError, match=r"ground truth class_ids must have shape \(1,\)"):
        GroundTruth.from_arrays([[1, 2, 3, 4]], [0, 1])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"minimum_detection_ground_truth_overlap": {"Mask": 1.5}}, r"must be in \(0, 1\]"),
        (
            {"evaluation_box_config": {"Mask": {"minimum_height": 50, "maximum_height": 20}}},
            r"minimum_height \(50.*<= maximum_height",
        ),
        ({"average_precision_mode": "AVERAGE"}, "average_precision_mode"),
        ({"minimum_overlap": {"Mask": 0.5}}, "Extra inputs are not permitted"),
    ],
)
def test_malformed_config_is_rejected(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        EvaluationConfig.model_validate(fields)


def test_uniform_config() -> None:
    config = EvaluationConfig.uniform(NAMES, 0.6, "SAMPLE")
    assert config.overlap_for("No-Mask") == 0.6
    assert config.average_precision_mode is APMode.SAMPLE
    assert config.box_config_for("Mask") == EvaluationBoxConfig()
    assert config.num_recall_points == 11


def test_postprocessed_network_output_evaluates_against_its_labels() -> None:
    """The served path end to end: grid outputs → TAO-configured clustering → AP."""
    boxes = np.array([[100.0, 120.0, 220.0, 260.0], [600.0, 300.0, 700.0, 420.0]], np.float32)
    cov = np.zeros((2, 34, 60), np.float32)
    bbox = np.zeros((8, 34, 60), np.float32)
    for class_id, box in enumerate(boxes):
        gx, gy = int((box[0] + box[2]) / 32), int((box[1] + box[3]) / 32)
        patch = (slice(gy - 1, gy + 2), slice(gx - 1, gx + 2))
        cov[(class_id, *patch)] = 0.8
        offsets = encode_bbox(box[None], 60, 34)[0]
        bbox[(slice(4 * class_id, 4 * class_id + 4), *patch)] = offsets[(slice(None), *patch)]
    params = ClusterParams.from_tao_clustering(
        coverage_threshold=0.005,
        dbscan_eps=0.15,
        dbscan_min_samples=1,
        minimum_bounding_box_height=4,
        dbscan_confidence_threshold=0.1,
    )
    predictions = postprocess(cov, bbox, params)
    assert predictions[0].scores.tolist() == pytest.approx([0.8 * 9, 0.8 * 9])  # aggregate_cov
    report = evaluate(predictions, [GroundTruth.from_arrays(boxes, [0, 1])], NAMES, _config())
    assert report.average_precisions == {"Mask": 1.0, "No-Mask": 1.0}
