"""Detections: checked on creation, selected by row, and carried through heron.v1 unchanged."""

from __future__ import annotations

import math

import numpy as np
import pytest
from heron.core.detections import Detections, DetectionsError
from heron.v1.detection_pb2 import BoundingBox, DetectedObject, FrameMetadata


def _three(**optional: object) -> Detections:
    return Detections(
        [[0, 0, 10, 10], [5, 5, 20, 30], [1, 2, 3, 4]],
        [0.9, 0.2, 0.5],
        [0, 1, 0],
        **optional,  # type: ignore[arg-type]
    )


def test_arrays_are_normalised_and_optional_fields_absent() -> None:
    d = _three()
    assert d.xyxy.dtype == np.float32 and d.xyxy.shape == (3, 4)
    assert d.scores.dtype == np.float32
    assert d.class_ids.dtype == np.int64
    assert d.tracker_ids is None and d.labels is None
    assert len(d) == 3
    empty = Detections.empty()
    assert len(empty) == 0 and empty.xyxy.shape == (0, 4) and empty.xyxy.dtype == np.float32


@pytest.mark.parametrize(
    ("boxes", "scores", "ids", "optional", "message"),
    [
        ([[0, 0, 1]], [0.5], [0], {}, r"xyxy must have shape \(N, 4\).*but got shape \(1, 3\)"),
        ([[0, 0, 1, 1]], [0.5, 0.2], [0], {}, r"scores must have shape \(1,\), but got shape \(2,"),
        ([[0, 0, 1, 1]], [0.5], [0, 1], {}, r"class_ids must have shape \(1,\), but got shape"),
        ([[5, 0, 1, 1]], [0.5], [0], {}, r"xyxy\[0\] must have x2 >= x1 and y2 >= y1, but got"),
        ([[0, 0, np.nan, 1]], [0.5], [0], {}, r"xyxy\[0\] must be finite, but got \[0.0, 0.0, nan"),
        ([[0, 0, 1, 1]], [np.inf], [0], {}, r"scores\[0\] must be finite, but got inf"),
        ([[0, 0, 1, 1]], [0.5], [-1], {}, r"class_ids\[0\] must be >= 0, but got -1"),
        ([[0, 0, 1, 1]], [0.5], [0.5], {}, r"class_ids must be whole numbers"),
        ([["a", 0, 1, 1]], [0.5], [0], {}, r"xyxy must be numbers"),
        ([[0, 0, 1, 1]], [0.5], [0], {"tracker_ids": [-2]}, r"tracker_ids\[0\] must be >= 0"),
        ([[0, 0, 1, 1]], [0.5], [0], {"tracker_ids": [1, 2]}, r"tracker_ids must have shape \(1,"),
        ([[0, 0, 1, 1]], [0.5], [0], {"labels": ["a", "b"]}, r"labels must have shape \(1,\)"),
        ([[0, 0, 1, 1]], [0.5], [0], {"labels": [3]}, r"labels must be strings, but got an arr"),
    ],
)
def test_malformed_input_is_rejected_saying_what_was_expected(
    boxes: object, scores: object, ids: object, optional: dict[str, object], message: str
) -> None:
    with pytest.raises(DetectionsError, match=message):
        Detections(boxes, scores, ids, **optional)  # type: ignore[arg-type]


def test_float_class_ids_that_are_whole_are_accepted() -> None:
    assert Detections([[0, 0, 1, 1]], [0.5], [2.0]).class_ids.tolist() == [2]


def test_selection_keeps_rows_of_every_field_together() -> None:
    d = _three(tracker_ids=[7, 0, 9], labels=["Mask", "No-Mask", "Mask"])
    one = d[1]
    assert isinstance(one, Detections) and len(one) == 1
    assert one.class_ids.tolist() == [1] and one.tracker_ids is not None
    assert one.tracker_ids.tolist() == [0] and one.labels is not None
    assert one.labels.tolist() == ["No-Mask"]
    picked = d[[2, 0]]
    assert picked.scores.tolist() == pytest.approx([0.5, 0.9])
    assert picked.tracker_ids is not None and picked.tracker_ids.tolist() == [9, 7]
    masked = d[d.scores > 0.4]
    assert masked.xyxy.tolist() == [[0, 0, 10, 10], [1, 2, 3, 4]]
    assert masked.labels is not None and masked.labels.tolist() == ["Mask", "Mask"]
    assert d[1:].class_ids.tolist() == [1, 0]
    assert len(d[[]]) == 0 and d[[]].tracker_ids is not None
    assert d.of_class(0).xyxy.shape == (2, 4)


@pytest.mark.parametrize(
    ("index", "message"),
    [
        (np.array([True, False]), r"boolean mask must have shape \(3,\), but got shape \(2,\)"),
        (np.array([0.0, 1.0]), r"index must be row numbers or a boolean mask, but got an array"),
    ],
)
def test_bad_indices_are_rejected(index: np.ndarray, message: str) -> None:
    with pytest.raises(DetectionsError, match=message):
        _three()[index]


def test_concat_fills_fields_a_part_lacks_with_the_protos_unset_values() -> None:
    tracked = _three(tracker_ids=[4, 5, 6])
    both = Detections.concat([_three(labels=["a", "b", "c"]), Detections.empty(), tracked[0]])
    assert len(both) == 4 and both.class_ids.tolist() == [0, 1, 0, 0]
    assert both.tracker_ids is not None and both.tracker_ids.tolist() == [0, 0, 0, 4]
    assert both.labels is not None and both.labels.tolist() == ["a", "b", "c", ""]
    plain = Detections.concat([_three(), _three()])
    assert plain.tracker_ids is None and plain.labels is None
    assert len(Detections.concat([])) == 0


def test_class_names_label_by_class_id() -> None:
    d = Detections([[0, 0, 1, 1]] * 3, [0.5] * 3, [1, 0, 5]).with_class_names(["Mask", "No-Mask"])
    assert d.labels is not None and d.labels.tolist() == ["No-Mask", "Mask", ""]


def test_proto_round_trip_keeps_boxes_scores_classes_tracker_ids_and_labels() -> None:
    d = _three(tracker_ids=[3, 0, 12], labels=["Mask", "", "Mask"])
    objects = d.to_proto(component_id=7)
    assert [o.label for o in objects] == ["Mask", "", "Mask"]
    assert [o.tracker_id for o in objects] == [3, 0, 12]
    assert [o.component_id for o in objects] == [7, 7, 7]
    assert objects[1].bbox == BoundingBox(left=5, top=5, width=15, height=25)
    meta = FrameMetadata(objects=objects)
    for back in (Detections.from_proto(meta), Detections.from_proto(meta.objects)):
        np.testing.assert_array_equal(back.xyxy, d.xyxy)
        np.testing.assert_array_equal(back.scores, d.scores)
        np.testing.assert_array_equal(back.class_ids, d.class_ids)
        assert back.tracker_ids is not None and back.tracker_ids.tolist() == [3, 0, 12]
        assert back.labels is not None and back.labels.tolist() == ["Mask", "", "Mask"]


def test_untracked_unlabelled_objects_read_back_without_those_fields() -> None:
    objects = _three().to_proto()
    assert {(o.tracker_id, o.label, o.component_id) for o in objects} == {(0, "", 0)}
    back = Detections.from_proto(objects)
    assert back.tracker_ids is None and back.labels is None
    assert len(Detections.from_proto(FrameMetadata())) == 0


def test_fractional_boxes_come_back_within_one_float32_step() -> None:
    # The proto stores width, not x2: x1 + width can land one float32 step off x2, never more.
    rng = np.random.default_rng(0)
    corner = rng.uniform(0, 1900, (5000, 2))
    xyxy = np.concatenate([corner, corner + rng.uniform(1, 400, (5000, 2))], 1)
    d = Detections(xyxy, rng.uniform(0, 1, 5000), np.zeros(5000, np.int64))
    back = Detections.from_proto(d.to_proto())
    np.testing.assert_array_equal(back.xyxy[:, :2], d.xyxy[:, :2])
    assert np.all(np.abs(back.xyxy - d.xyxy) <= np.spacing(d.xyxy))
    np.testing.assert_array_equal(back.scores, d.scores)


@pytest.mark.parametrize(
    ("bbox", "message"),
    [
        (
            BoundingBox(left=math.nan, width=4, height=4),
            r"objects\[1\]\.bbox: expected finite left/top and width, height >= 0, got left=nan "
            r"top=0.0 width=4.0 height=4.0",
        ),
        (
            BoundingBox(width=-3, height=4),
            r"objects\[1\]\.bbox: expected .* got left=0.0 top=0.0 width=-3.0 height=4.0",
        ),
    ],
)
def test_malformed_proto_boxes_name_the_object(bbox: BoundingBox, message: str) -> None:
    good = DetectedObject(bbox=BoundingBox(width=1, height=1))
    with pytest.raises(DetectionsError, match=message):
        Detections.from_proto([good, DetectedObject(bbox=bbox)])
