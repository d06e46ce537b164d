"""Exemplars of the latency histograms: which frame an observation names, within OpenMetrics'
limit of 128 characters of exemplar labels, and on the bucket its time fell in."""

from __future__ import annotations

import pytest
from heron.core.runtime import FrameKey, ServiceMetrics, frame_exemplar, oldest_frame
from heron.core.runtime.metrics import EXEMPLAR_MAX_CHARS
from heron.v1.frame_pb2 import FrameRef
from prometheus_client import Histogram
from prometheus_client.samples import Exemplar

UINT64_MAX = 2**64 - 1


def ref(stream_id: str, number: int, captured_ns: int | None = None) -> FrameRef:
    frame = FrameRef(stream_id=stream_id, frame_number=number)
    if captured_ns is not None:
        frame.capture_time.FromNanoseconds(captured_ns)
    return frame


def exemplars(metrics: ServiceMetrics, stage: str) -> dict[str, Exemplar]:
    """The exemplar of each bucket (by `le`) of a stage's latency that has one."""
    found = {}
    for family in metrics.registry.collect():
        if family.name == "heron_stage_latency_seconds":
            for s in family.samples:
                if s.exemplar is not None and s.labels["stage"] == stage:
                    found[s.labels["le"]] = s.exemplar
    return found


def size(labels: dict[str, str]) -> int:
    """Characters OpenMetrics counts: every label name and value (UTF-8 characters)."""
    return sum(len(k) + len(v) for k, v in labels.items())


@pytest.mark.parametrize(
    ("stream_id", "number"),
    [("source-0", 0), ("cam-1", 1234), ("c" * 97, UINT64_MAX), ("c" * 116, 0)],
)
def test_an_exemplar_names_the_stream_and_frame(stream_id: str, number: int) -> None:
    labels = frame_exemplar(ref(stream_id, number))
    assert labels == {"stream": stream_id, "frame": str(number)}
    assert size(labels) <= EXEMPLAR_MAX_CHARS


@pytest.mark.parametrize("number", [0, 42, UINT64_MAX])
def test_a_stream_id_too_long_for_the_limit_keeps_its_head_and_tail(number: int) -> None:
    labels = frame_exemplar(FrameKey("z" * 128, number))  # ids may have 128 characters
    assert size(labels) == EXEMPLAR_MAX_CHARS and labels["frame"] == str(number)
    long_id = "site-a." + "x" * 100 + ".cam-17"
    labels = frame_exemplar(FrameKey(long_id, UINT64_MAX))
    assert size(labels) == EXEMPLAR_MAX_CHARS
    head, tail = labels["stream"].split("~")
    assert long_id.startswith(head) and long_id.endswith(tail) and tail.endswith(".cam-17")
    # prometheus_client refuses the unshortened labels: a live observation would raise.
    histogram = Histogram("t_seconds", "t", registry=None)
    with pytest.raises(ValueError, match="128"):
        histogram.observe(1.0, {"stream": long_id, "frame": str(UINT64_MAX)})
    histogram.observe(1.0, labels)


def test_a_batch_is_named_by_its_frame_captured_first() -> None:
    """Each frame of a batch spent the batch's time in the stage; the one captured first is the
    slowest of them end to end."""
    batch = [
        ref("cam-1", 70, 3_000_000_123),
        ref("cam-0", 9, 2_999_999_999),
        ref("cam-2", 5, 3 * 10**9),
    ]
    assert oldest_frame(batch) is batch[1]
    assert oldest_frame(iter(batch)) is batch[1]
    assert oldest_frame([]) is None


def test_each_bucket_keeps_the_latest_frame_that_fell_in_it() -> None:
    """One slow frame among fast ones stays named in the slow bucket: what a dashboard's
    exemplar on a slow p95 points at."""
    metrics = ServiceMetrics("inference", pipeline="cams")
    metrics.observe("inference.infer", 1.7, frames=4, frame=ref("cam-3", 812))
    for n in range(100):
        metrics.observe("inference.infer", 0.004, frames=4, frame=ref("cam-0", n))
    metrics.observe("inference.infer", 0.003, frames=4)  # no frame: no exemplar, none replaced
    got = exemplars(metrics, "inference.infer")
    assert got.keys() == {"2.5", "0.005"}
    assert got["2.5"].labels == {"stream": "cam-3", "frame": "812"}
    assert got["2.5"].value == 1.7 and got["2.5"].timestamp is not None
    assert got["0.005"].labels == {"stream": "cam-0", "frame": "99"}


def test_track_names_the_frame_it_timed() -> None:
    metrics = ServiceMetrics("tracker", pipeline="cams")
    with metrics.track("tracker", frame=ref("source-0", 7)):
        pass
    with metrics.track("tracker.publish", frames=2):
        pass
    assert [e.labels for e in exemplars(metrics, "tracker").values()] == [
        {"stream": "source-0", "frame": "7"}
    ]
    assert exemplars(metrics, "tracker.publish") == {}
