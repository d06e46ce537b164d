"""Admission at a stage's entry: which streams, which batches, which frame numbers (no Redis)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from heron.core.bus.admission import (
    AdmissionReason,
    AdmissionSettings,
    BatchShape,
    FrameOrder,
    KnownStreams,
    Order,
    RefusedError,
)
from heron.core.config.models import Pipeline
from heron.core.plan.sources import plan_sources

NEXT, LATE, BEHIND, AHEAD, RESYNC = Order
S = 1_000_000_000  # ns per second


def run(frames: Sequence[int | tuple[int, float]], **settings: Any) -> list[Order]:
    """Place each frame (a number, or (number, publish time in s); time 0 by default)."""
    order = FrameOrder(AdmissionSettings(**settings))
    out = []
    for frame in frames:
        number, at_s = frame if isinstance(frame, tuple) else (frame, 0.0)
        out.append(order.place(number, int(at_s * S)).order)
    return out


@pytest.mark.parametrize(
    ("frames", "expected"),
    [
        # Gaps up to max_frame_gap are dropped frames (latest frame wins), not strays.
        ([0, 1, 2, 40, 340], [NEXT] * 5),
        ([0, 1, 2, 999_999, 3, 4], [NEXT, NEXT, NEXT, AHEAD, NEXT, NEXT]),
        ([0, 1, 2, 1, 2, 3], [NEXT, NEXT, NEXT, LATE, LATE, NEXT]),  # redeliveries
        # An upstream stall: 60 s later the source is 1,800 frames on (30 fps); 240 fps allowed.
        ([(0, 0.0), (1800, 60.0), (1801, 60.1)], [NEXT] * 3),
        ([(0, 0.0), (16_000, 60.0)], [NEXT, AHEAD]),  # more than 300 + 240 * 60
        # A jump nobody announced: followed after resync_after frames that agree.
        ([0, 1, *range(5000, 5008), 5008], [NEXT, NEXT, *[AHEAD] * 7, RESYNC, NEXT]),
        # The first frame was a stray: the real ones behind it take the stream back.
        ([999_999, *range(8), 8], [NEXT, *[BEHIND] * 7, RESYNC, NEXT]),
        # Numbering began again early on (within the gap): frame 0 starts a run all the same.
        ([*range(50), *range(8)], [*[NEXT] * 50, *[BEHIND] * 7, RESYNC]),
        # Strays between real frames never add up, however many.
        ([f for n in range(20) for f in (n, 10**6 + n)], [NEXT, AHEAD] * 20),
        ([0, *[999_999] * 10, 1], [NEXT, *[AHEAD] * 10, NEXT]),  # repeats are no run
        ([5, *range(6000, 6004), *range(3000, 3004)], [NEXT, *[AHEAD] * 4, *[AHEAD] * 4]),
    ],
    ids=[
        "small-gaps",
        "stray-ahead",
        "redelivered",
        "stall",
        "too-far-for-the-stall",
        "jump",
        "stray-first",
        "early-restart",
        "interleaved-strays",
        "repeated-stray",
        "runs-that-disagree",
    ],
)
def test_frame_order(frames: list[int | tuple[int, float]], expected: list[Order]) -> None:
    assert run(frames) == expected


def test_a_stream_that_steps_further_than_the_gap_is_followed_after_one_resync() -> None:
    """A fast file read by a slow stage: every frame the stage sees is 600 on."""
    frames = [(600 * k, 0.1 * k) for k in range(20)]
    assert run(frames) == [NEXT, *[AHEAD] * 7, RESYNC, *[NEXT] * 11]


def test_a_resync_onto_frame_0_is_a_restart() -> None:
    order = FrameOrder(AdmissionSettings(resync_after=3))
    for n in (999_999, 0, 1):
        order.place(n, 0)
    placed = order.place(2, 0)
    assert (placed.order, placed.restarted, placed.last, placed.run_first) == (
        RESYNC,
        True,
        999_999,
        0,
    )


def test_a_frame_from_the_future_says_how_far() -> None:
    order = FrameOrder(AdmissionSettings())
    order.place(10, 0)
    error = order.place(999_999, S // 2).refusal("source-0")
    assert error.reason is AdmissionReason.FUTURE_FRAME
    assert str(error) == (
        "future_frame: stream 'source-0' frame 999999 is 999989 ahead of frame 10, the last in "
        "order; at most 420 can be"
    )


SINK = {"type": "fake", "enable": True}
CAMERA = {"type": 1, "enable": True, "camera_width": 640, "camera_height": 480, "camera_fps_n": 30}


def pipeline(sources: dict[int, dict[str, Any]], **streammux: Any) -> Pipeline:
    return Pipeline.model_validate({"sources": sources, "sinks": {0: SINK}, "streammux": streammux})


def uri(**fields: Any) -> dict[str, Any]:
    return {"type": 3, "enable": True, "uri": "file:///clip.mp4", **fields}


@pytest.mark.parametrize(
    ("sources", "ids"),
    [
        ({0: CAMERA}, ["source-0"]),
        ({0: uri(num_sources=3)}, ["source-0", "source-1", "source-2"]),
        ({0: CAMERA, 1: {**CAMERA, "enable": False}, 2: uri()}, ["source-0", "source-1"]),
        ({0: uri(num_sources=2), 1: uri(source_id=7)}, ["source-0", "source-1", "source-7"]),
    ],
)
def test_stream_ids_are_the_ones_ingest_opens(sources: dict[int, Any], ids: list[str]) -> None:
    p = pipeline(sources)
    assert p.stream_ids == ids
    assert [s.spec.stream_id for s in plan_sources(p, check_exists=False)] == ids


def test_an_unknown_stream_is_refused_with_the_known_ones() -> None:
    known = KnownStreams.of(pipeline({0: uri(num_sources=2)}))
    known.check("source-1")
    with pytest.raises(RefusedError) as caught:
        known.check("cam-9")
    assert caught.value.reason is AdmissionReason.UNKNOWN_STREAM
    assert str(caught.value) == (
        "unknown_stream: stream 'cam-9' is not one of the pipeline's streams (source-0, source-1)"
    )


@pytest.mark.parametrize(
    ("frames", "size", "message"),
    [
        (0, (320, 192), "bad_batch: the batch holds no frames"),
        (3, (320, 192), "bad_batch: 3 frames, more than the muxer's batch of 2"),
        (2, (640, 192), "bad_batch: frames of 640x192, not the muxer's 320x192"),
    ],
)
def test_a_batch_that_does_not_fit_the_muxer_is_refused(
    frames: int, size: tuple[int, int], message: str
) -> None:
    shape = BatchShape.of(pipeline({0: uri(num_sources=2)}, width=320, height=192))
    shape.check(2, 320, 192)
    shape.check(1, 320, 192)  # a partial batch (batched-push-timeout) fits
    with pytest.raises(RefusedError, match=message) as caught:
        shape.check(frames, *size)
    assert caught.value.reason is AdmissionReason.BAD_BATCH


def test_the_muxer_batch_size_wins_over_the_stream_count() -> None:
    assert BatchShape.of(pipeline({0: CAMERA}, batch_size=4)).max_frames == 4
    assert BatchShape.of(pipeline({0: uri(num_sources=3)})).max_frames == 3
