"""The EngineRollout's parts that decide without I/O: its spec, the canary's streams, the
routings it sets, the pipelines it finds, and the gates' arithmetic."""

from __future__ import annotations

from typing import Any

import pytest
from heron_operator import gates as g
from heron_operator.pipelines import PipelineRef, Routing, pipeline_ref, selector_with_api
from heron_operator.rollout import Target, pick_canaries
from heron_operator.rollout_spec import CanaryStreams, EngineRolloutSpec, Gates, parse_duration
from pydantic import ValidationError

Json = dict[str, Any]


def spec(**fields: Any) -> EngineRolloutSpec:
    return EngineRolloutSpec.model_validate(
        {"engineBuild": "facemask-int8", "selector": {}, **fields}
    )


def test_defaults_are_the_crds() -> None:
    s = spec()
    assert s.soak_s == 600 and s.action == ""
    assert s.canary.streams.percent == 10 and s.canary.streams.count is None
    assert s.gates == Gates(
        max_ap_drop=0.02, min_fps_ratio=0.95, max_error_rate=0.01, max_detection_rate_drift=0.2
    )


@pytest.mark.parametrize(
    ("text", "seconds"), [("10m", 600), ("1h30m", 5400), ("90s", 90), ("1.5h", 5400)]
)
def test_soak_reads_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"soak": "30s"}, "between 1m and 168h"),
        ({"soak": "200h"}, "between 1m and 168h"),
        ({"soak": "10 minutes"}, "expected a duration"),
        ({"soak": ""}, "expected a duration"),
        ({"canary": {"streams": {"percent": 10, "count": 2}}}, "exactly one of"),
        ({"canary": {"streams": {}}}, "exactly one of"),
        ({"canary": {"streams": {"percent": 0}}}, "greater than or equal to 1"),
        ({"gates": {"minFpsRatio": 1.5}}, "less than or equal to 1"),
        ({"action": "Rollback"}, "'Promote' or 'Abort'"),
        ({"selector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}, "In needs values"),
        (
            {
                "selector": {
                    "matchExpressions": [{"key": "a", "operator": "Exists", "values": ["b"]}]
                }
            },
            "Exists takes no values",
        ),
        ({"engineBuild": ""}, "at least 1 character"),
        ({"unknown": 1}, "Extra inputs are not permitted"),
    ],
)
def test_a_spec_the_crd_refuses_is_refused_naming_why(fields: Json, message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        spec(**fields)
    assert message in str(refused.value)


def test_the_selector_in_the_api_servers_syntax() -> None:
    s = spec(selector={
        "matchLabels": {"heron.dev/pipeline": "facemask", "env": "prod"},
        "matchExpressions": [
            {"key": "zone", "operator": "In", "values": ["a", "b"]},
            {"key": "canary", "operator": "DoesNotExist"},
        ],
    })  # fmt: skip
    query = "env=prod,heron.dev/pipeline=facemask,zone in (a,b),!canary"
    assert s.selector.query() == query
    assert selector_with_api(query) == query + ",heron.dev/api=pipeline"
    assert selector_with_api("") == "heron.dev/api=pipeline"


@pytest.mark.parametrize(
    ("streams", "total", "canaries"),
    [
        ({"percent": 10}, 2, 1),  # rounded up, at least one
        ({"percent": 50}, 5, 3),
        ({"percent": 100}, 4, 4),
        ({"count": 3}, 2, 2),  # at most all
        ({"count": 1}, 10, 1),
    ],
)
def test_canary_stream_count(streams: Json, total: int, canaries: int) -> None:
    assert CanaryStreams.model_validate(streams).of(total) == canaries


def ref(name: str) -> PipelineRef:
    return PipelineRef(name, f"{name}-control", f"10.0.0.1:{len(name)}")


def test_canaries_spread_over_pipelines_and_skip_pinned_streams() -> None:
    found = [
        (ref("a"), ["s0", "s1", "s2"], Routing("", {}, "1")),
        (ref("b"), ["t0", "t1"], Routing("", {"t0": "7"}, "1")),
    ]
    targets = pick_canaries(found, 3)
    assert [t.canary_streams for t in targets] == [["s0", "s1"], ["t1"]]
    assert targets[1].streams == ["t1"]  # t0 is pinned to version 7: not the rollout's


def test_routings_follow_from_the_stable_record_alone() -> None:
    target = Target(ref("a"), ["s0", "s1", "s2"], ["s1"], Routing("", {"x": "7"}, "1"))
    assert target.canary("9") == Routing("", {"x": "7", "s1": "9"}, "1")
    assert target.promoted("9") == Routing("9", {"x": "7"}, "1")
    assert target.stable == Routing("", {"x": "7"}, "1")
    assert Target.from_status(target.to_status()) == target


def test_a_control_services_address() -> None:
    service = {
        "metadata": {"name": "cams-facemask-control", "namespace": "video",
                     "labels": {"heron.dev/pipeline": "facemask"}},
        "spec": {"clusterIP": "10.96.0.12", "ports": [{"name": "grpc", "port": 50051}]},
    }  # fmt: skip
    assert pipeline_ref(service) == PipelineRef(
        "facemask", "cams-facemask-control", "10.96.0.12:50051"
    )
    headless = {**service, "spec": {"clusterIP": "None", "ports": [{"port": 6000}]}}
    found = pipeline_ref(headless)
    assert found is not None
    assert found.address == "cams-facemask-control.video.svc:6000"
    assert pipeline_ref({**service, "spec": {"ports": []}}) is None


def counts(**values: float) -> g.Counts:
    return g.Counts(**values)


def test_readings_compare_the_canary_with_the_stable_streams() -> None:
    canary = counts(frames=900, sources=1000, inferred=900, objects=450, failures=1)
    stable = counts(frames=1900, sources=2000, inferred=1900, objects=1900)
    r = g.readings(canary, stable, g.baseline(counts(), stable, counts()), ap_drop=0.01)
    assert r.fps_ratio == pytest.approx(0.9 / 0.95)
    assert r.error_rate == pytest.approx(1 / 901)
    assert r.detection_rate_drift == pytest.approx(0.5)  # 0.5 objects per frame against 1.0
    assert r.drift_at_least is not None and 0.4 < r.drift_at_least < 0.5  # hundreds of objects
    assert r.ap_drop == 0.01


def test_the_baseline_follows_the_canary_streams_own_rate_moved_as_the_stable_ones_moved() -> None:
    """Difference in differences: cameras differ (the canary's saw 2 objects a frame, the
    stable one 4), and a scene change on all of them (halved) is no drift."""
    before = counts(inferred=1000, objects=2000)
    stable_then, stable_now = (
        counts(inferred=1000, objects=4000),
        counts(inferred=1000, objects=2000),
    )
    base = g.baseline(before, stable_now, stable_then)
    assert base is not None and base.value == pytest.approx(1.0)
    same = g.readings(counts(inferred=1000, objects=1000), None, base, None)
    assert same.detection_rate_drift == pytest.approx(0.0)
    # Without stable streams: the canary streams' own rate before; without that: the stable now.
    assert g.baseline(before, counts(), counts()) == g.Rate.of(before)
    assert g.baseline(counts(), stable_now, counts()) == g.Rate.of(stable_now)
    assert g.baseline(counts(), counts(), counts()) is None


def test_a_drift_of_few_objects_breaks_nothing_mid_soak_but_counts_at_its_end() -> None:
    gates = Gates(max_detection_rate_drift=0.2)
    few = g.readings(
        counts(inferred=80, objects=3), None, g.Rate.of(counts(inferred=80, objects=5)), None
    )
    assert few.detection_rate_drift == pytest.approx(0.4)
    assert few.drift_at_least == 0.0  # 3 against 5 objects: could be no drift at all
    assert g.judge(few, gates, ap_gated=False).healthy
    assert not g.judge(few, gates, ap_gated=False, final=True).healthy
    collapsed = g.readings(
        counts(inferred=160, objects=0), None, g.Rate.of(counts(inferred=160, objects=4000)), None
    )
    assert collapsed.detection_rate_drift == 1.0
    verdict = g.judge(collapsed, gates, ap_gated=False)
    assert verdict.broken and "detectionRateDrift at least 0.9" in verdict.broken[0]


def test_readings_without_a_baseline_or_data_are_not_measured() -> None:
    empty = g.readings(counts(), None, None, ap_drop=None)
    assert empty == g.Readings()
    alone = g.readings(counts(frames=50, sources=100, inferred=50), None, None, ap_drop=None)
    assert alone.fps_ratio == 0.5 and alone.detection_rate_drift is None
    nothing = g.Rate.of(counts(inferred=10))
    collapsed = g.readings(counts(inferred=10, objects=0), None, nothing, None)
    assert collapsed.detection_rate_drift == 0.0  # nothing before, nothing now
    appeared = g.readings(counts(inferred=10, objects=3), None, nothing, None)
    assert appeared.detection_rate_drift == 1.0


def test_judging_breaks_on_any_gate_and_waits_for_missing_readings() -> None:
    gates = Gates()
    healthy = g.Readings(0.01, 0.99, 0.0, 0.05, 0.0)
    assert g.judge(healthy, gates, ap_gated=True).complete
    broken = g.judge(g.Readings(0.01, 0.5, 0.0, 0.9, 0.9), gates, ap_gated=True)
    assert broken.broken == [
        "fpsRatio 0.5 < minFpsRatio 0.95",
        "detectionRateDrift at least 0.9 > maxDetectionRateDrift 0.2",
    ]
    partial = g.judge(g.Readings(None, 0.99, None, None), gates, ap_gated=False)
    assert partial.healthy and not partial.complete
    assert partial.unmeasured == ["errorRate", "detectionRateDrift"]
    assert "not measured yet: errorRate, detectionRateDrift" in partial.message(
        g.Readings(None, 0.99, None, None)
    )


def test_stream_ids_are_matched_exactly_in_promql() -> None:
    assert g._any_of(["source-0", "cam.1"]) == "source\\\\-0|cam\\\\.1"
