"""The inference service end to end against a real redis-server (ONNX Runtime backend)."""

from __future__ import annotations

import collections
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from heron.core import streams
from heron.core.bus import BackpressureError
from heron.core.framestore import decode_jpeg
from heron.core.runtime import FatalError
from heron.inference.backends.onnx_runtime import OnnxRuntimeBackend
from heron.inference.detector import DetectorHead
from heron.inference.geometry import Placement, frame_geometry
from heron.inference.preprocess import Preprocessor, PreprocessSpec
from heron.v1.frame_pb2 import FrameBatch, FrameRef

from tests.inference.conftest import ExportedDetector, write_nvinfer, write_pipeline
from tests.inference.harness import SOURCE_H, SOURCE_W, Harness

BATCHES = streams.batches("default").key
# Low enough that the random-weight detector finds objects, so boxes are compared too.
ATTRS = "[class-attrs-all]\npre-cluster-threshold=0.45\nnms-iou-threshold=0.3\ntopk=5\n"


@pytest.fixture
def make_harness(redis_url: str, tmp_path: Path, detector: ExportedDetector) -> Iterator[Any]:
    made: list[Harness] = []

    def make(extra: str = "", padding: bool = False, gie: str = "", **overrides: Any) -> Harness:
        """`extra`: nvinfer [property] keys; `gie`: more primary_gie keys of the pipeline."""
        nvinfer = write_nvinfer(tmp_path, detector.onnx, extra=extra, class_attrs=ATTRS)
        pipeline = write_pipeline(tmp_path, nvinfer, padding=padding)
        pipeline.write_text(pipeline.read_text() + gie)
        harness = Harness(redis_url, pipeline, tmp_path, **overrides)
        harness.service.start()
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.close()


def frame_key(meta: Any) -> tuple[str, int]:
    return meta.frame.stream_id, meta.frame.frame_number


@pytest.mark.parametrize("location", ["jpeg", "shm"])
def test_every_frame_gets_exactly_one_metadata(make_harness: Any, location: str) -> None:
    h = make_harness()
    h.publish_batches(count=5, streams_n=3, location=location)
    h.run_until(lambda: len(h.metadata()) >= 15)
    metas = h.metadata()
    counts = collections.Counter(frame_key(m) for m in metas)
    assert counts == {(f"source-{s}", b): 1 for s in range(3) for b in range(5)}
    assert h.pending(BATCHES) == 0
    info = h.service.backend.model_info()
    for m in metas:
        assert (m.model_name, m.model_version) == (info.name, info.version)
        assert m.inferred and [s.stage for s in m.stages] == ["inference"]
        assert m.stages[0].start.ToNanoseconds() <= m.stages[0].end.ToNanoseconds()
        assert (m.frame.width, m.frame.height) == (SOURCE_W, SOURCE_H)
    assert sum(len(m.objects) for m in metas) > 0


@pytest.mark.parametrize(
    ("padding", "source", "content"),
    [
        (False, (SOURCE_W, SOURCE_H), (112, 64)),  # stretched: exactly half the source
        (True, (224, 160), (90, 64)),  # letterboxed: scale min(112/224, 64/160) = 0.4
    ],
)
def test_objects_are_the_models_boxes_on_the_source_frame(
    make_harness: Any,
    detector: ExportedDetector,
    padding: bool,
    source: tuple[int, int],
    content: tuple[int, int],
) -> None:
    """Cross-check one frame by hand: decode, preprocess, ONNX Runtime, postprocess, and the
    muxer's scaling undone — the service must publish the same objects. The scaling comes
    from the FrameRef alone: the pipeline config's enable-padding is left at 0 throughout."""
    h = make_harness()
    publisher = h.bus.publisher(streams.batches("default"), FrameBatch)
    publisher.publish(h.batch(0, 1, source=source, padding=padding))
    h.run_until(lambda: len(h.metadata()) == 1)
    (meta,) = h.metadata()
    image = decode_jpeg(h.published[0].jpeg)
    spec = PreprocessSpec.from_nvinfer(h.service.detector.nvinfer.property, (3, 64, 112))
    batch, (network,) = Preprocessor(spec)([image])
    backend = OnnxRuntimeBackend(detector.onnx)
    muxer = Placement(source, (112, 64), content)
    head = DetectorHead(h.service.detector.nvinfer, backend.model_info())
    (found,) = head.detections(backend.infer(batch), [frame_geometry(muxer, network)])
    assert len(found) == len(meta.objects) > 0
    for obj, box, score, cid in zip(
        meta.objects, found.xyxy, found.scores, found.class_ids, strict=True
    ):
        got = [obj.bbox.left, obj.bbox.top, obj.bbox.left + obj.bbox.width]
        np.testing.assert_allclose(got, box[:3], atol=1e-3)
        assert obj.confidence == pytest.approx(float(score), abs=1e-6)
        assert obj.label == ("Mask", "No-Mask")[int(cid)]
    # In source pixels: past the muxer's 112x64, within the source.
    assert max(o.bbox.left + o.bbox.width for o in meta.objects) > 112
    assert max(o.bbox.left + o.bbox.width for o in meta.objects) <= source[0] + 1


def test_interval_passes_frames_through(make_harness: Any) -> None:
    h = make_harness(extra="interval=2")
    h.publish_batches(count=6, streams_n=2)
    h.run_until(lambda: len(h.metadata()) >= 12)
    by_stream: dict[str, list[bool]] = collections.defaultdict(list)
    for m in sorted(h.metadata(), key=frame_key):
        by_stream[m.frame.stream_id].append(m.inferred)
        if not m.inferred:
            assert not m.objects
    assert by_stream == {s: [True, False, False] * 2 for s in ("source-0", "source-1")}


def test_metadata_carries_the_primary_gie_unique_id_and_labels(
    make_harness: Any, tmp_path: Path
) -> None:
    """[primary-gie] gie-unique-id and labelfile-path win over the nvinfer config's (1 and
    Mask/No-Mask), as deepstream-app's element properties win over its config file."""
    (tmp_path / "faces.txt").write_text("face\nbare\n")
    h = make_harness(gie="  gie_unique_id: 5\n  labelfile_path: faces.txt\n")
    h.publish_batches(count=3, streams_n=2)
    h.run_until(lambda: len(h.metadata()) >= 6)
    objects = [o for m in h.metadata() for o in m.objects]
    assert objects
    assert {o.component_id for o in objects} == {5}
    assert {o.label for o in objects} <= {"face", "bare"}
    assert {o.label for o in objects} == {("face", "bare")[o.class_id] for o in objects}


def test_unused_engine_is_a_warning_in_the_log_at_start(
    make_harness: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="heron.inference.service")
    h = make_harness(gie="  model_engine_file: /engines/model_b4_gpu0_fp16.engine\n")
    pipeline = tmp_path / "pipeline.yaml"
    line = (
        pipeline.read_text()
        .splitlines()
        .index("  model_engine_file: /engines/model_b4_gpu0_fp16.engine")
    )
    expected = (
        f"config: {pipeline}:{line + 1}: warning: [primary_gie.model_engine_file] "
        "model-engine-file '/engines/model_b4_gpu0_fp16.engine' is not used: Heron cannot load "
        "a TensorRT engine and runs the config's onnx-file"
    )
    assert any(m.startswith(expected) for m in caplog.messages), caplog.messages
    h.publish_batches(count=1, streams_n=2)  # and it runs the ONNX model
    h.run_until(lambda: len(h.metadata()) >= 2)


def test_an_engine_and_no_onnx_stops_the_service_naming_file_and_line(
    redis_url: str, tmp_path: Path, detector: ExportedDetector
) -> None:
    nvinfer = write_nvinfer(tmp_path, detector.onnx, class_attrs=ATTRS)
    text = nvinfer.read_text().replace(f"onnx-file={detector.onnx}", "model-engine-file=m.engine")
    nvinfer.write_text(text)
    app = tmp_path / "app.txt"
    app.write_text(
        "[source0]\nenable=1\ntype=1\ncamera-width=224\ncamera-height=128\n"
        "camera-fps-n=30\n\n[sink0]\nenable=1\ntype=1\n\n"
        "[primary-gie]\nenable=1\nconfig-file=nvinfer.txt\nmodel-engine-file=model.engine\n"
    )
    harness = Harness(redis_url, app, tmp_path)
    try:
        with pytest.raises(FatalError) as caught:  # a restart cannot mend it: `heron run` stops
            harness.service.start()
    finally:
        harness.close()
    message = str(caught.value)
    line = app.read_text().splitlines().index("model-engine-file=model.engine") + 1
    assert f"{app}:{line}: [primary-gie.model-engine-file] model-engine-file " in message
    assert f"'{tmp_path / 'model.engine'}' is a TensorRT engine, which Heron cannot run" in message
    assert "export the model to ONNX and set onnx-file=" in message


def test_batch_size_splits_a_larger_muxer_batch(
    make_harness: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    h: Harness = make_harness(extra="batch-size=2")
    seen: list[int] = []
    infer = h.service.backend.infer

    def counting(batch: np.ndarray) -> dict[str, np.ndarray]:
        seen.append(len(batch))
        return infer(batch)

    monkeypatch.setattr(h.service.backend, "infer", counting)
    h.publish_batches(count=1, streams_n=5)
    h.run_until(lambda: len(h.metadata()) >= 5)
    assert seen == [2, 2, 1]
    assert h.sample("heron_inference_batch_frames_count") == 3
    assert h.sample("heron_inference_batch_frames_sum") == 5


def test_input_is_acked_only_after_metadata_is_published(
    make_harness: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = make_harness()
    publish = h.service.metadata.publish_many

    def full(messages: Any) -> Any:
        raise BackpressureError("meta", 10, 0.1, [], len(messages))

    monkeypatch.setattr(h.service.metadata, "publish_many", full)
    h.publish_batches(count=2, streams_n=2)
    for _ in range(3):
        h.service.step()
    assert h.metadata() == [] and h.pending(BATCHES) == 1  # held, not acknowledged
    monkeypatch.setattr(h.service.metadata, "publish_many", publish)
    h.run_until(lambda: len(h.metadata()) >= 4)
    assert h.pending(BATCHES) == 0
    assert collections.Counter(frame_key(m) for m in h.metadata()).most_common(1)[0][1] == 1


def test_malformed_frames_and_messages_are_dead_lettered(make_harness: Any) -> None:
    h = make_harness()
    good = h.batch(0, 1)
    bad_jpeg = FrameRef(
        stream_id="source-1", frame_number=0, width=224, height=128, jpeg=b"\xff\xd8"
    )
    no_pixels = FrameRef(stream_id="source-2", frame_number=0, width=224, height=128)
    misplaced = FrameRef()
    misplaced.CopyFrom(h.batch(0, 4).frames[3])
    misplaced.placement.offset_x = 50  # the 112x64 picture would stick out of its 112x64 pixels
    frames = [*good.frames, bad_jpeg, no_pixels, misplaced]
    batch = FrameBatch(batch_id=0, frames=frames, width=112, height=64)
    h.client.xadd(BATCHES, {"pb": batch.SerializeToString(), "type": "heron.v1.FrameBatch"})
    h.client.xadd(BATCHES, {"pb": b"\x0a\xff garbage", "type": "heron.v1.FrameBatch"})
    h.client.xadd(BATCHES, {"type": "heron.v1.FrameBatch"})  # no pb at all
    h.run_until(lambda: len(h.dead_letters(BATCHES)) >= 5)
    h.run_until(lambda: h.pending(BATCHES) == 0)
    assert [frame_key(m) for m in h.metadata()] == [("source-0", 0)]
    letters = h.dead_letters(BATCHES)
    reasons = sorted(letter.reason.split(":")[0] for letter in letters)
    assert reasons == ["bad_frame", "bad_frame", "bad_frame", "bad_protobuf", "missing_field"]
    found = {
        FrameRef.FromString(d.payload).stream_id: d.reason for d in letters if "frame " in d.reason
    }
    assert "source-1" in found and "JPEG" in found["source-1"].upper()
    assert "source-2" in found and "no location" in found["source-2"]
    assert "source-3" in found and "does not fit the stored 112x64 pixels" in found["source-3"]


def test_frames_straight_from_frame_streams(make_harness: Any) -> None:
    h = make_harness(input="frames", frame_streams=["source-0", "source-1"])
    for s in range(2):
        publisher = h.bus.publisher(streams.frames(f"source-{s}"), FrameRef)
        for n in range(4):
            ref = FrameRef(stream_id=f"source-{s}", frame_number=n)
            image = np.full((SOURCE_H, SOURCE_W, 3), 40 * n, np.uint8)
            publisher.publish(h.store.store(image, ref, "shm"))
    h.run_until(lambda: len(h.metadata()) >= 8)
    assert collections.Counter(frame_key(m) for m in h.metadata()) == {
        (f"source-{s}", n): 1 for s in range(2) for n in range(4)
    }
    assert all(h.pending(streams.frames(f"source-{s}").key) == 0 for s in range(2))


def test_work_of_a_crashed_replica_is_reclaimed(make_harness: Any) -> None:
    """Replica A takes a batch and dies before acknowledging; replica B (same group) takes the
    batch over once it has been idle min_idle_ms: every frame still gets its metadata."""
    consumer = {"min_idle_ms": 100, "reclaim_interval_ms": 0}
    a = make_harness(consumer=consumer, consumer_name="replica-a")
    a.publish_batches(count=1, streams_n=2)
    assert a.service._take() is not None  # read, never finished: A "crashes" here
    assert a.metadata() == [] and a.pending(BATCHES) == 1
    b = make_harness(consumer=consumer, consumer_name="replica-b")
    b.run_until(lambda: len(b.metadata()) == 2)
    assert sorted(frame_key(m) for m in b.metadata()) == [("source-0", 0), ("source-1", 0)]
    assert b.pending(BATCHES) == 0
    owners = b.client.xinfo_consumers(BATCHES, "inference")
    assert {c["name"] for c in owners} == {b"replica-a", b"replica-b"}


def test_frame_overwritten_in_the_ring_is_dead_lettered(make_harness: Any) -> None:
    from heron.core.framestore import FrameStore, SharedMemoryRing, segment_name

    h = make_harness(input="frames", frame_streams=["source-0"])
    ring = SharedMemoryRing.create(segment_name("overwrite-test"), 2, 1 << 17)
    try:
        store = FrameStore(ring)
        image = np.zeros((SOURCE_H, SOURCE_W, 3), np.uint8)
        refs = [
            store.store(image, FrameRef(stream_id="source-0", frame_number=n), "shm")
            for n in range(3)
        ]
        publisher = h.bus.publisher(streams.frames("source-0"), FrameRef)
        for ref in refs:  # frame 0's slot was reused by frame 2 before anyone read it
            publisher.publish(ref)
        key = streams.frames("source-0").key
        h.run_until(lambda: len(h.metadata()) == 2 and len(h.dead_letters(key)) == 1)
        (letter,) = h.dead_letters(key)
        assert letter.reason.startswith("frame_overwritten: stream 'source-0' frame 0")
        assert FrameRef.FromString(letter.payload).frame_number == 0
        assert sorted(m.frame.frame_number for m in h.metadata()) == [1, 2]
        assert h.pending(key) == 0
    finally:
        ring.close()
        ring.unlink()


def test_batches_the_backend_refuses_are_dead_lettered(
    make_harness: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from heron.inference.errors import BackendError

    h: Harness = make_harness()

    def refuse(batch: np.ndarray) -> dict[str, np.ndarray]:
        raise BackendError("model 'x' input 'input_1': expected a batch of shape ...")

    monkeypatch.setattr(h.service.backend, "infer", refuse)
    h.publish_batches(count=1, streams_n=2)
    h.run_until(lambda: len(h.dead_letters(BATCHES)) == 2)
    h.run_until(lambda: h.pending(BATCHES) == 0)
    assert h.metadata() == []
    assert all(d.reason.startswith("inference_failed: model 'x'") for d in h.dead_letters(BATCHES))


def stray_frame(number: int, stream: str = "source-0") -> Any:
    """A well-formed one-frame batch whose frame is `stream`'s frame `number`."""

    def make(h: Harness) -> FrameBatch:
        batch = h.batch(number, 1)
        batch.frames[0].stream_id = stream
        return batch

    return make


def reshaped(frames: int, size: tuple[int, int] = (112, 64)) -> Any:
    """A muxer batch of `frames` frames that says its frames are `size`."""

    def make(h: Harness) -> FrameBatch:
        batch = h.batch(7, frames) if frames else FrameBatch(batch_id=7)
        batch.width, batch.height = size
        return batch

    return make


@pytest.mark.parametrize(
    ("make_bad", "type_name", "reason"),
    [
        (
            stray_frame(999_999),
            "heron.v1.FrameRef",
            "future_frame: stream 'source-0' frame 999999 is 999998 ahead of frame 1, the last "
            "in order; at most ",
        ),
        (
            stray_frame(2, stream="cam-9"),
            "heron.v1.FrameRef",
            "unknown_stream: stream 'cam-9' is not one of the pipeline's streams (source-0, "
            "source-1, source-2, source-3, source-4)",
        ),
        (
            reshaped(6),
            "heron.v1.FrameBatch",
            "bad_batch: 6 frames, more than the muxer's batch of 5",
        ),
        (
            reshaped(2, size=(224, 128)),
            "heron.v1.FrameBatch",
            "bad_batch: frames of 224x128, not the muxer's 112x64",
        ),
        (reshaped(0), "heron.v1.FrameBatch", "bad_batch: the batch holds no frames"),
    ],
    ids=["future-frame", "unknown-stream", "too-many-frames", "wrong-size", "empty"],
)
def test_a_message_that_does_not_fit_is_dead_lettered_and_the_rest_go_on(
    make_harness: Any, make_bad: Any, type_name: str, reason: str
) -> None:
    h: Harness = make_harness()
    publisher = h.bus.publisher(streams.batches("default"), FrameBatch)
    bad = make_bad(h)
    for batch in (h.batch(0, 2), h.batch(1, 2), bad, h.batch(2, 2), h.batch(3, 2)):
        publisher.publish(batch)
    h.run_until(lambda: len(h.metadata()) >= 8 and len(h.dead_letters(BATCHES)) >= 1)
    h.run_until(lambda: h.pending(BATCHES) == 0)
    metas = h.metadata()
    assert collections.Counter(frame_key(m) for m in metas) == {
        (f"source-{s}", b): 1 for s in range(2) for b in range(4)
    }
    assert all(m.inferred for m in metas)  # the stray did not shift interval or state
    (letter,) = h.dead_letters(BATCHES)
    assert letter.reason.startswith(reason), letter.reason
    assert letter.type_name == type_name
    expected = bad if type_name == "heron.v1.FrameBatch" else bad.frames[0]
    assert letter.payload == expected.SerializeToString()
    label = reason.split(":", maxsplit=1)[0]
    assert h.sample("heron_admission_refused_total", stage="inference", reason=label) == 1
    # Counted per stream of the frames it held (docs/observability.md: the drops panel).
    refused = [
        f.stream_id for f in (bad.frames if type_name == "heron.v1.FrameBatch" else [bad.frames[0]])
    ]
    for stream, n in collections.Counter(refused).items():
        dropped = h.sample(
            "heron_inference_stream_dead_lettered_total", stream=stream, reason=label
        )
        assert dropped == n, (stream, dropped)


def test_frame_streams_refuse_a_frame_of_another_stream_or_from_the_future(
    make_harness: Any,
) -> None:
    h: Harness = make_harness(input="frames", frame_streams=["source-0"])
    image = np.zeros((SOURCE_H, SOURCE_W, 3), np.uint8)
    numbers = [(0, "source-0"), (1, "source-0"), (2, "source-1"), (999_999, "source-0")]
    numbers += [(2, "source-0"), (3, "source-0")]
    refs = [h.store.store(image, FrameRef(stream_id=s, frame_number=n), "shm") for n, s in numbers]
    h.bus.publisher(streams.frames("source-0"), FrameRef).publish_many(refs)
    key = streams.frames("source-0").key
    h.run_until(lambda: len(h.metadata()) >= 4 and len(h.dead_letters(key)) >= 2)
    assert sorted(m.frame.frame_number for m in h.metadata()) == [0, 1, 2, 3]
    reasons = [d.reason for d in h.dead_letters(key)]
    assert reasons[0] == (
        "unknown_stream: the frame says stream 'source-1' but came on the frame stream of "
        "'source-0'"
    )
    assert reasons[1].startswith("future_frame: stream 'source-0' frame 999999")
