"""Detections: checked on creation, with errors that say what was expected and what came."""

from __future__ import annotations

import numpy as np
import pytest
from heron.postprocess import Detections, DetectionsError
from heron.v1 import detection_pb2


def _three() -> Detections:
    return Detections.from_arrays(
        [[0, 0, 10, 10], [5, 5, 20, 30], [1, 2, 3, 4]], [0.9, 0.2, 0.5], [0, 1, 0]
    )


def test_normalises_dtypes() -> None:
    d = _three()
    assert d.boxes.dtype == np.float32 and d.boxes.shape == (3, 4)
    assert d.scores.dtype == np.float32
    assert d.class_ids.dtype == np.int64
    assert len(d) == 3


@pytest.mark.parametrize(
    ("boxes", "scores", "ids", "message"),
    [
        ([[0, 0, 1]], [0.5], [0], r"shape \(N, 4\).*got shape \(1, 3\)"),
        ([[0, 0, 1, 1]], [0.5, 0.2], [0], r"scores must have shape \(1,\), but got shape \(2,\)"),
        ([[0, 0, 1, 1]], [0.5], [0, 1], r"class_ids must have shape \(1,\), but got shape \(2,\)"),
        ([[5, 0, 1, 1]], [0.5], [0], r"boxes\[0\] must have x2 >= x1 and y2 >= y1"),
        ([[0, 0, np.nan, 1]], [0.5], [0], r"boxes\[0\] must be finite"),
        ([[0, 0, 1, 1]], [np.inf], [0], r"scores\[0\] must be finite"),
        ([[0, 0, 1, 1]], [0.5], [-1], r"class_ids\[0\] must be >= 0, but got -1"),
        ([[0, 0, 1, 1]], [0.5], [0.5], r"class_ids must be whole numbers"),
        ([["a", 0, 1, 1]], [0.5], [0], r"boxes must be numbers"),
    ],
)
def test_malformed_input_is_rejected(
    boxes: object, scores: object, ids: object, message: str
) -> None:
    with pytest.raises(DetectionsError, match=message):
        Detections.from_arrays(boxes, scores, ids)  # type: ignore[arg-type]


def test_float_class_ids_that_are_whole_are_accepted() -> None:
    d = Detections.from_arrays([[0, 0, 1, 1]], [0.5], [2.0])
    assert d.class_ids.tolist() == [2]


def test_filter_index_and_concat() -> None:
    d = _three()
    assert d.filter(d.scores > 0.4).scores.tolist() == pytest.approx([0.9, 0.5])
    assert d[1].class_ids.tolist() == [1]
    assert d[[2, 0]].scores.tolist() == pytest.approx([0.5, 0.9])
    assert d.of_class(0).boxes.shape == (2, 4)
    assert d.sorted_by_score().scores.tolist() == pytest.approx([0.9, 0.5, 0.2])
    both = Detections.concat([d, Detections.empty(), d[0]])
    assert len(both) == 4 and both.class_ids.tolist() == [0, 1, 0, 0]
    assert len(Detections.concat([])) == 0


def test_filter_needs_a_boolean_mask_of_the_right_length() -> None:
    with pytest.raises(DetectionsError, match=r"boolean array of shape \(3,\)"):
        _three().filter(np.array([True, False]))
    with pytest.raises(DetectionsError, match="boolean array"):
        _three().filter(np.array([1, 0, 1]))


def test_proto_round_trip() -> None:
    d = _three()
    objects = d.to_proto(labels=["Mask", "No-Mask"], component_id=7)
    assert all(isinstance(o, detection_pb2.DetectedObject) for o in objects)
    assert [o.label for o in objects] == ["Mask", "No-Mask", "Mask"]
    assert objects[1].bbox.width == pytest.approx(15) and objects[1].bbox.height == pytest.approx(
        25
    )
    assert objects[0].component_id == 7
    back = Detections.from_proto(objects)
    np.testing.assert_allclose(back.boxes, d.boxes)
    np.testing.assert_allclose(back.scores, d.scores)
    assert back.class_ids.tolist() == d.class_ids.tolist()
