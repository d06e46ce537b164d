"""The tracker service end to end against a real redis-server: metadata in, tracked out."""

from __future__ import annotations

import math
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from heron.core.config.diagnostics import ConfigError
from heron.core.framestore import FrameStore, Letterbox, SharedMemoryRing, segment_name
from heron.v1.detection_pb2 import BoundingBox, DetectedObject, FrameMetadata
from heron.v1.frame_pb2 import FrameRef
from heron.v1.stream_pb2 import StreamEvent

from tests.tracker.harness import Harness, meta, obj, write_pipeline
from tests.tracker.scenes import render

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def harness(redis_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Harness]:
    options = getattr(request, "param", {})
    h = Harness(redis_url, write_pipeline(tmp_path, **options))
    h.service.start()
    try:
        yield h
    finally:
        h.close()


def moving(stream: str, frames: int) -> list[FrameMetadata]:
    """Two objects per frame moving apart."""
    return [
        meta(stream, f, obj(20 + 3 * f, 30), obj(250 - 3 * f, 120, label="No-Mask"))
        for f in range(frames)
    ]


@pytest.mark.parametrize("harness", [{"batch": 1}, {"batch": 0}], indirect=True)
def test_every_frame_comes_out_once_with_persistent_ids(
    harness: Harness, request: pytest.FixtureRequest
) -> None:
    a, b = moving("source-0", 12), moving("source-1", 12)
    harness.publish(*[m for pair in zip(a, b, strict=True) for m in pair])
    harness.run_until(lambda: len(harness.out()) >= 24)
    out = harness.out()
    assert sorted((m.frame.stream_id, m.frame.frame_number) for m in out) == sorted(
        (s, f) for s in ("source-0", "source-1") for f in range(12)
    )
    ids: dict[tuple[str, str], set[int]] = defaultdict(set)
    for m in out:
        assert len(m.objects) == 2
        assert [s.stage for s in m.stages] == ["tracker"]
        for o in m.objects:
            ids[(m.frame.stream_id, o.label)].add(o.tracker_id)
            assert o.tracker_confidence > 0
    # One id per object for the whole run; each stream numbers its own objects from 1.
    assert ids == {
        ("source-0", "Mask"): {1},
        ("source-0", "No-Mask"): {2},
        ("source-1", "Mask"): {1},
        ("source-1", "No-Mask"): {2},
    }
    assert harness.pending() == 0
    batch = request.node.callspec.params["harness"]["batch"]
    assert harness.service.read_count == (harness.settings.read_count if batch else 1)
    assert harness.metric("heron_tracker_frames_total", result="tracked") == 24
    for stream in ("source-0", "source-1"):
        assert harness.metric("heron_tracker_stream_frames_total", stream=stream) == 12


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (meta("", 0, obj(1, 1)), "bad_metadata: frame.stream_id: expected the source's stream id"),
        (
            meta("source-1", 0, DetectedObject(bbox=BoundingBox(left=math.nan, width=4, height=4))),
            "bad_metadata: objects[0].bbox: expected finite left/top and width, height >= 0, got "
            "left=nan",
        ),
        (
            meta("source-1", 0, obj(1, 1), DetectedObject(bbox=BoundingBox(width=-3, height=4))),
            "bad_metadata: objects[1].bbox: expected finite left/top and width, height >= 0",
        ),
    ],
)
def test_malformed_metadata_is_dead_lettered_with_the_reason(
    harness: Harness, message: FrameMetadata, reason: str
) -> None:
    good = meta("source-0", 0, obj(10, 10))
    harness.publish(message, good)
    harness.run_until(lambda: len(harness.out()) == 1 and len(harness.dead_letters()) == 1)
    letter = harness.dead_letters()[0]
    assert letter.reason.startswith(reason), letter.reason
    assert letter.type_name == "heron.v1.FrameMetadata" and letter.group == "tracker"
    assert harness.out()[0].frame.stream_id == "source-0"
    assert harness.pending() == 0
    assert harness.metric("heron_tracker_frames_total", result="dead_lettered") == 1


def test_undecodable_entries_are_dead_lettered_by_the_bus(harness: Harness) -> None:
    harness.raw({"pb": b"\xff\xff not protobuf", "type": b"heron.v1.FrameMetadata"})
    harness.raw({"nopb": b"x"})
    harness.publish(meta("source-0", 0, obj(10, 10)))
    harness.run_until(lambda: len(harness.out()) == 1 and len(harness.dead_letters()) == 2)
    reasons = sorted(d.reason.split(":")[0] for d in harness.dead_letters())
    assert reasons == ["bad_protobuf", "missing_field"]


def test_eos_drops_the_stream_after_its_last_frame(harness: Harness) -> None:
    harness.event(StreamEvent(stream_id="source-0", started=StreamEvent.Started()))
    harness.publish(*moving("source-0", 3), *moving("source-1", 2))
    harness.run_until(lambda: len(harness.out()) == 5)
    assert "source-0" in harness.service.streams
    harness.event(StreamEvent(stream_id="source-0", eos=StreamEvent.EndOfStream(frames=4)))
    harness.service.step()
    assert "source-0" in harness.service.streams  # frame 3 is still to come
    harness.publish(moving("source-0", 4)[3])
    harness.run_until(lambda: len(harness.out()) == 6)
    assert "source-0" not in harness.service.streams and "source-1" in harness.service.streams


def test_a_redelivered_frame_is_passed_on_untracked(harness: Harness) -> None:
    frames = moving("source-0", 4)
    harness.publish(*frames, frames[1])
    harness.run_until(lambda: len(harness.out()) == 5)
    stale = harness.out()[-1]
    assert stale.frame.frame_number == 1 and [o.tracker_id for o in stale.objects] == [0, 0]
    assert harness.metric("heron_tracker_frames_total", result="stale") == 1


def tracked_ids(message: FrameMetadata) -> list[int]:
    return sorted(o.tracker_id for o in message.objects)


@pytest.mark.parametrize(
    ("stray", "reason"),
    [
        (
            meta("source-0", 999_999, obj(200, 20)),
            "future_frame: stream 'source-0' frame 999999 is 999995 ahead of frame 4, the last "
            "in order; at most ",
        ),
        (
            meta("cam-9", 5, obj(200, 20)),
            "unknown_stream: stream 'cam-9' is not one of the pipeline's streams (source-0, "
            "source-1, source-2)",
        ),
    ],
    ids=["future-frame", "unknown-stream"],
)
def test_a_stray_frame_is_dead_lettered_and_tracking_goes_on(
    harness: Harness, stray: FrameMetadata, reason: str
) -> None:
    """Issue 13: a well-formed FrameMetadata numbered 999999 turned tracking off for the rest of
    the clip (every later frame was stale) and came out as a 13th frame of 12."""
    frames = moving("source-0", 12)
    harness.publish(*frames[:5], stray, *frames[5:])
    harness.run_until(lambda: len(harness.out()) + len(harness.dead_letters()) >= 13)
    harness.run_until(lambda: harness.pending() == 0)
    out = harness.out()
    assert [(m.frame.stream_id, m.frame.frame_number) for m in out] == [
        ("source-0", f) for f in range(12)
    ]
    assert [tracked_ids(m) for m in out] == [[1, 2]] * 12  # one id per object, every frame
    (letter,) = harness.dead_letters()
    assert letter.reason.startswith(reason), letter.reason
    assert FrameMetadata.FromString(letter.payload) == stray
    assert harness.metric("heron_tracker_frames_total", result="tracked") == 12
    assert harness.metric("heron_tracker_frames_total", result="stale") == 0
    assert harness.metric("heron_tracker_frames_total", result="dead_lettered") == 1
    refused = {"stage": "tracker", "reason": reason.split(":", maxsplit=1)[0]}
    assert harness.metric("heron_admission_refused_total", **refused) == 1


@pytest.mark.parametrize("first_real", [0, 5], ids=["from-frame-0", "mid-stream"])
def test_a_stray_that_came_first_is_left_behind_after_resync_after_frames(
    harness: Harness, first_real: int
) -> None:
    """Nothing to judge the very first frame of a stream by, so a stray that comes first gets in;
    the real frames behind it pass on untracked until resync_after of them agree, then they are
    tracked again (not stale for the rest of the clip)."""
    resync_after = harness.settings.admission.resync_after
    frames = moving("source-0", first_real + 20)[first_real:]
    harness.publish(meta("source-0", 999_999, obj(200, 20)), *frames)
    harness.run_until(lambda: len(harness.out()) == 21)
    real = [m for m in harness.out() if m.frame.frame_number != 999_999]
    assert [m.frame.frame_number for m in real] == list(range(first_real, first_real + 20))
    behind = resync_after - 1
    assert [tracked_ids(m) for m in real[:behind]] == [[0, 0]] * behind  # passed on untracked
    assert all(len(tracked_ids(m)) == 2 and 0 not in tracked_ids(m) for m in real[behind:])
    assert len({tuple(tracked_ids(m)) for m in real[behind:]}) == 1  # the same ids throughout
    assert harness.metric("heron_tracker_frames_total", result="stale") == behind
    labels = {"stage": "tracker", "direction": "behind"}
    assert harness.metric("heron_admission_resyncs_total", **labels) == 1
    assert harness.dead_letters() == []


@pytest.fixture
def ring() -> Iterator[SharedMemoryRing]:
    ring = SharedMemoryRing.create(segment_name("tracker-test"), 3, 320 * 192 * 3 + 4096)
    try:
        yield ring
    finally:
        ring.close()
        ring.unlink()


@pytest.mark.parametrize(
    "harness",
    [{"library": "libnvds_mot_klt.so"}, {"library": "libnvds_nvdcf.so"}],
    indirect=True,
)
def test_pixel_trackers_follow_objects_on_frames_the_detector_skipped(
    harness: Harness, ring: SharedMemoryRing
) -> None:
    store = FrameStore(ring)
    messages = []
    for f in range(9):
        x = 40 + 4 * f
        image = render([x, 60, x + 40, 110]).image
        ref = store.store(image, FrameRef(stream_id="source-0", frame_number=f), "jpeg")
        inferred = f % 3 == 0  # nvinfer interval=2
        m = meta("source-0", f, *([obj(x, 60)] if inferred else []), inferred=inferred)
        m.frame.CopyFrom(ref)
        messages.append(m)
    harness.publish(*messages)
    harness.run_until(lambda: len(harness.out()) == 9)
    out = sorted(harness.out(), key=lambda m: m.frame.frame_number)
    assert [[o.tracker_id for o in m.objects] for m in out] == [[1]] * 9
    lefts = np.array([m.objects[0].bbox.left for m in out])
    truth = 40 + 4 * np.arange(9)
    assert np.abs(lefts - truth).max() <= 5  # moved on skipped frames, not held in place
    assert out[1].objects[0].label == "Mask"  # the detector's object, carried
    assert harness.metric("heron_tracker_frames_total", result="carried") == 6


@pytest.mark.parametrize("harness", [{"library": "libnvds_mot_klt.so"}], indirect=True)
def test_a_frame_overwritten_in_the_ring_is_tracked_by_overlap_and_counted(
    harness: Harness, ring: SharedMemoryRing
) -> None:
    store = FrameStore(ring)
    refs = [
        store.store(
            render([40 + f, 60, 80 + f, 110]).image, FrameRef(stream_id="source-0", frame_number=f)
        )
        for f in range(5)  # 5 frames through a 3-slot ring: frames 0 and 1 are gone
    ]
    messages = []
    for f, ref in enumerate(refs):
        m = meta("source-0", f, obj(40 + f, 60))
        m.frame.CopyFrom(ref)
        messages.append(m)
    harness.publish(*messages)
    harness.run_until(lambda: len(harness.out()) == 5)
    assert [[o.tracker_id for o in m.objects] for m in harness.out()] == [[1]] * 5
    assert harness.metric("heron_tracker_pixels_missing_total", reason="overwritten") == 2


def test_batch_frames_at_the_muxer_size_are_read(redis_url: str, tmp_path: Path) -> None:
    # [streammux] says 320x192: the tracker goes by what the FrameRef says, not the config.
    pipeline = write_pipeline(tmp_path, "libnvds_mot_klt.so", muxer=(320, 192))
    h = Harness(redis_url, pipeline)
    h.service.start()
    try:
        store = FrameStore()
        image = render([40, 60, 80, 110]).image[::2, ::2].copy()  # a 160x96 muxer frame
        # Refs in a batch keep the source's size and say the muxer's size and placement.
        placement = Letterbox.fit(320, 192, 160, 96, padding=False)
        ref = store.store(
            image, FrameRef(stream_id="source-0", frame_number=0), "jpeg", placement=placement
        )
        m = meta("source-0", 0, obj(40, 60))
        m.frame.CopyFrom(ref)
        h.publish(m)
        h.run_until(lambda: len(h.out()) == 1)
        assert h.metric("heron_tracker_pixels_missing_total", reason="unreadable") == 0
        assert [o.tracker_id for o in h.out()[0].objects] == [1]
    finally:
        h.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"enable": 0}, r"\[tracker.enable\] \[tracker\] is missing or not enabled"),
        ({"library": "libfoo.so"}, r"unknown tracker library 'libfoo.so'"),
        (
            {"ll_config": "TargetManagement:\n  probationAge: soon\n"},
            r"tracker.yml:2: error: \[TargetManagement.probationAge\] Input should be a valid "
            r"integer",
        ),
    ],
)
def test_bad_tracker_config_stops_the_start_with_a_clear_error(
    redis_url: str, tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    h = Harness(redis_url, write_pipeline(tmp_path, **options))
    try:
        with pytest.raises(ConfigError, match=message):
            h.service.start()
    finally:
        h.close()


def test_the_module_entry_point_reports_a_bad_config(tmp_path: Path) -> None:
    pipeline = write_pipeline(tmp_path, ll_config="BaseConfig:\n  minDetectorConfidence: 2\n")
    settings = tmp_path / "settings.yaml"
    settings.write_text(
        f"pipeline_config: {pipeline}\nredis_url: redis://127.0.0.1:1/0\nmetrics: {{port: 0}}\n"
        "log: {format: console}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "heron.tracker", "-c", str(settings)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 1
    assert "[BaseConfig.minDetectorConfidence] Input should be less than or equal to 1" in (
        done.stdout + done.stderr
    )


def test_the_service_process_tracks_and_stops_on_sigterm(redis_url: str, tmp_path: Path) -> None:
    import signal
    import time

    pipeline = write_pipeline(tmp_path, "libheron_bytetrack.so")
    settings = tmp_path / "settings.yaml"
    settings.write_text(
        f"pipeline_config: {pipeline}\nredis_url: {redis_url}\npipeline: proc\n"
        "metrics: {port: 0}\nlog: {format: console}\nread_block_ms: 50\n"
    )
    h = Harness(redis_url, pipeline, pipeline="proc")  # its bus and readers only
    process = subprocess.Popen(
        [sys.executable, "-m", "heron.tracker", "-c", str(settings)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        h.publish(*moving("source-0", 6))
        deadline = time.monotonic() + 30
        while len(h.out()) < 6 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        out = h.out()
        assert [m.frame.frame_number for m in out] == list(range(6))
        # ByteTrack with probationAge 0: two objects, ids 1 and 2 on every frame.
        assert all(sorted(o.tracker_id for o in m.objects) == [1, 2] for m in out)
    finally:
        process.send_signal(signal.SIGTERM)
        logs, _ = process.communicate(timeout=30)
        h.close()
    assert process.returncode == 0, logs
