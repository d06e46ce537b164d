"""Behaviour every tracker shares: ids kept, occlusion bridged, new objects, probation."""

from __future__ import annotations

import numpy as np
import pytest
from heron.core.boxes import pairwise_iou
from heron.tracker import Detections, Frame, TrackerKind

from tests.tracker.scenes import KINDS, box, dets, ids, params, render, tracker


def frame_for(kind: TrackerKind, *boxes: list[float]) -> Frame | None:
    return render(*boxes) if kind in (TrackerKind.KLT, TrackerKind.CORRELATION) else None


@pytest.mark.parametrize("kind", KINDS)
def test_keeps_one_id_for_a_moving_object(kind: TrackerKind) -> None:
    t = tracker(kind)
    seen = []
    for f in range(20):
        b = box(20 + 3 * f, 40 + f)
        out = t.update(dets(b), frame_for(kind, b))
        assert len(out) == 1
        seen.append(out[0].track_id)
        assert out[0].detection == 0
    assert set(seen) == {1}


@pytest.mark.parametrize("kind", KINDS)
def test_two_objects_keep_their_own_ids(kind: TrackerKind) -> None:
    t = tracker(kind)
    for f in range(15):
        a, b = box(20 + 2 * f, 20), box(250 - 2 * f, 120)
        out = t.update(dets(a, b), frame_for(kind, a, b))
        assert {o.detection: o.track_id for o in out} == {0: 1, 1: 2}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("gap", "shadow_age", "same_id"), [(4, 10, True), (6, 3, False)])
def test_occlusion_is_bridged_only_within_the_shadow_age(
    kind: TrackerKind, gap: int, shadow_age: int, same_id: bool
) -> None:
    t = tracker(kind, params(maxShadowTrackingAge=shadow_age))
    first = t.update(dets(box(100, 60)), frame_for(kind, box(100, 60)))
    for _ in range(gap):  # the object is hidden: no detection, nothing reported
        assert t.update(Detections.empty(), frame_for(kind)) == []
    back = t.update(dets(box(101, 60)), frame_for(kind, box(101, 60)))
    assert ids(first) == [1]
    assert ids(back) == ([1] if same_id else [2])


@pytest.mark.parametrize("kind", KINDS)
def test_new_objects_get_new_ids(kind: TrackerKind) -> None:
    t = tracker(kind)
    out = []
    for f in range(10):
        boxes = [box(20 + f, 20)] + ([box(200, 100 - f)] if f >= 5 else [])
        out = t.update(dets(*boxes), frame_for(kind, *boxes))
    assert sorted(ids(out)) == [1, 2]
    t.update(dets(box(30, 20), box(200, 95), box(120, 130)), None)
    assert sorted(ids(t.update(dets(box(30, 20), box(200, 95), box(120, 130)), None))) == [1, 2, 3]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("probation", [0, 1, 3])
def test_a_target_is_reported_after_its_probation(kind: TrackerKind, probation: int) -> None:
    t = tracker(kind, params(probationAge=probation))
    reported = [
        bool(t.update(dets(box(50 + f, 50)), frame_for(kind, box(50 + f, 50)))) for f in range(6)
    ]
    assert reported == [f >= probation for f in range(6)]


@pytest.mark.parametrize("kind", KINDS)
def test_a_target_on_probation_ends_at_its_first_miss(kind: TrackerKind) -> None:
    t = tracker(kind, params(probationAge=2, earlyTerminationAge=1))
    t.update(dets(box(50, 50)), None)
    t.update(Detections.empty(), None)  # one miss ends it: the next detection starts over
    out = [t.update(dets(box(50, 50)), None) for _ in range(3)]
    assert [ids(o) for o in out] == [[], [], [1]]


@pytest.mark.parametrize("kind", KINDS)
def test_detections_of_another_class_do_not_take_a_target(kind: TrackerKind) -> None:
    t = tracker(kind)
    t.update(Detections([box(50, 50)], [0.9], [0]), None)
    out = t.update(Detections([box(51, 50)], [0.9], [1]), None)
    assert ids(out) == []  # a new class-1 target overlapping the class-0 one starts no target
    t2 = tracker(kind, params(minIouDiff4NewTarget=1.0))
    t2.update(Detections([box(50, 50)], [0.9], [0]), None)
    assert ids(t2.update(Detections([box(51, 50)], [0.9], [1]), None)) == [2]


@pytest.mark.parametrize("kind", KINDS)
def test_a_duplicate_detection_starts_no_target(kind: TrackerKind) -> None:
    t = tracker(kind)
    out = t.update(dets(box(50, 50), box(52, 51)), None)
    assert ids(out) == [1]


@pytest.mark.parametrize("kind", KINDS)
def test_reset_forgets_targets_and_ids(kind: TrackerKind) -> None:
    t = tracker(kind)
    for f in range(3):
        t.update(dets(box(50 + f, 50), box(150, 50)), frame_for(kind, box(50 + f, 50)))
    t.reset()
    assert ids(t.update(dets(box(200, 100)), frame_for(kind, box(200, 100)))) == [1]


@pytest.mark.parametrize("kind", KINDS)
def test_low_scores_below_min_detector_confidence_are_ignored(kind: TrackerKind) -> None:
    p = params()
    p = p.model_copy(update={"base": p.base.model_copy(update={"min_detector_confidence": 0.4})})
    t = tracker(kind, p)
    assert t.update(dets(box(50, 50), scores=[0.3]), None) == []


@pytest.mark.parametrize("kind", KINDS)
def test_a_frame_without_pixels_still_tracks_by_overlap(kind: TrackerKind) -> None:
    t = tracker(kind)
    out = []
    for f in range(8):
        b = box(40 + 2 * f, 40)
        out = t.update(dets(b), None if f % 3 == 1 else frame_for(kind, b))
    assert ids(out) == [1]


def _carried_box(kind: TrackerKind, skipped: int) -> tuple[np.ndarray, np.ndarray]:
    """Track an object moving 4 px/frame, then skip the detector for `skipped` frames."""
    t = tracker(kind)
    f = 0
    for f in range(6):
        b = box(40 + 4 * f, 60)
        t.update(dets(b), frame_for(kind, b))
    out = []
    for f in range(6, 6 + skipped):
        out = t.update(None, frame_for(kind, box(40 + 4 * f, 60)))
    assert ids(out) == [1] and out[0].detection is None
    return out[0].box, np.array(box(40 + 4 * f, 60))


@pytest.mark.parametrize("kind", [TrackerKind.KLT, TrackerKind.CORRELATION, TrackerKind.BYTETRACK])
def test_motion_trackers_follow_the_object_on_skipped_frames(kind: TrackerKind) -> None:
    carried, truth = _carried_box(kind, skipped=6)
    assert pairwise_iou(carried[None], truth[None], np.float64)[0, 0] > 0.7


def test_the_iou_tracker_holds_the_last_box_on_skipped_frames() -> None:
    carried, _ = _carried_box(TrackerKind.IOU, skipped=6)
    assert carried.tolist() == box(40 + 4 * 5, 60)


def test_bytetrack_keeps_an_id_through_a_low_score_detection() -> None:
    t = tracker(TrackerKind.BYTETRACK)
    for f in range(4):
        t.update(dets(box(50 + f, 50), scores=[0.9]), None)
    out = t.update(dets(box(54, 50), scores=[0.3]), None)  # partly hidden: low score
    assert ids(out) == [1]
    fresh = tracker(TrackerKind.BYTETRACK)
    assert fresh.update(dets(box(54, 50), scores=[0.3]), None) == []  # low scores start nothing


def test_detections_are_checked_when_made() -> None:
    with pytest.raises(ValueError, match=r"xyxy\[0\] must have x2 >= x1 and y2 >= y1"):
        Detections([[10, 10, 5, 20]], [1.0], [0])
    with pytest.raises(ValueError, match=r"scores must have shape \(1,\), but got shape \(2,\)"):
        Detections([[0, 0, 5, 5]], [0.5, 0.6], [0])
