"""Tracking quality on a generated scene with ground truth, scored by py-motmetrics.

Bounds, not timings: they sit below what each tracker measured (bench/tracker.py prints the
numbers) so that a regression in association or the target life cycle fails here.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from heron.tracker import Detections, Frame, Tracked, TrackerKind, TrackerParams
from heron.tracker.factory import TrackerSpec, build_tracker
from heron.tracker.synthetic import Scene, SceneSpec, make_scene

pytest.importorskip("motmetrics", reason="py-motmetrics is not installed (pip install motmetrics)")

from heron.tracker.evaluation import evaluate

SIZE = (320, 192)  # tracker-width/height for the pixel trackers: half the scene


@pytest.fixture(scope="module")
def scene() -> Scene:
    return make_scene(SceneSpec(frames=90, seed=3))


@pytest.mark.parametrize(
    ("kind", "min_mota", "min_idf1", "max_switches"),
    [
        (TrackerKind.IOU, 0.8, 0.85, 3),
        (TrackerKind.KLT, 0.8, 0.85, 3),
        (TrackerKind.CORRELATION, 0.8, 0.85, 3),
        (TrackerKind.BYTETRACK, 0.8, 0.85, 3),
    ],
)
def test_quality_bounds(
    scene: Scene, kind: TrackerKind, min_mota: float, min_idf1: float, max_switches: int
) -> None:
    spec = TrackerSpec(kind, TrackerParams(), *SIZE)
    score = evaluate(build_tracker(spec), scene, pixels=spec.uses_pixels, size=SIZE)
    assert score.mota >= min_mota, score
    assert score.idf1 >= min_idf1, score
    assert score.id_switches <= max_switches, score


class Renumbering:
    """An IOU tracker whose ids change every frame: what losing identity looks like."""

    def __init__(self) -> None:
        self.inner = build_tracker(TrackerSpec(TrackerKind.IOU, TrackerParams()))
        self.frame = 0

    def update(self, detections: Detections | None, frame: Frame | None) -> list[Tracked]:
        self.frame += 1
        out = self.inner.update(detections, frame)
        return [replace(t, track_id=t.track_id + 1000 * self.frame) for t in out]

    def reset(self) -> None:
        self.inner.reset()


def test_lost_identity_scores_badly(scene: Scene) -> None:
    """Guards the harness: ids that change every frame must cost IDF1 and switches."""
    score = evaluate(Renumbering(), scene, pixels=False)
    assert score.idf1 < 0.2
    assert score.id_switches > 100


def test_motion_trackers_carry_objects_over_skipped_frames_better_than_iou(scene: Scene) -> None:
    """nvinfer interval=2: the detector sees one frame in three; every frame is scored."""
    mota = {}
    for kind in TrackerKind:
        spec = TrackerSpec(kind, TrackerParams(), *SIZE)
        tracker = build_tracker(spec)
        mota[kind] = evaluate(tracker, scene, pixels=spec.uses_pixels, size=SIZE, interval=2).mota
    for kind in (TrackerKind.KLT, TrackerKind.CORRELATION, TrackerKind.BYTETRACK):
        assert mota[kind] > mota[TrackerKind.IOU] + 0.1, mota
