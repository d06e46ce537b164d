"""charts/heron/rules/heron.rules.yaml as Prometheus runs it: `promtool check rules`, and
`promtool test rules` with, for every alert, series that fire it and series that must not; the
recording rules the dashboards draw, on series whose answer is known. The chart's render of the
same file (scoped to a release) is tests/charts/test_infra.py's.

Series look as the chart's PodMonitor makes them: job heron-pipelines (the file's placeholder),
the target labels `namespace` and `heron_dev_pipeline`, and the pod.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

RULES = REPO / "charts" / "heron" / "rules" / "heron.rules.yaml"
VALUES = REPO / "charts" / "heron" / "values.yaml"
DOC = REPO / "docs" / "observability.md"
PLACE = {"namespace": "video", "heron_dev_pipeline": "cams"}
META = "heron:meta:cams:inference"
THRESHOLD = re.compile(r"([0-9][0-9.e+-]*)\s*# monitoring\.rules\.(\w+)")

Labels = dict[str, str]


def selector(labels: Labels) -> str:
    return ", ".join(f'{k}="{v}"' for k, v in labels.items())


def series(metric: str, values: str, job: str = "heron-pipelines", **labels: str) -> Any:
    scope = {"job": job, **PLACE, "pod": "p1"} if job else {}
    return {"series": f"{metric}{{{selector({**scope, **labels})}}}", "values": values}


def operator(metric: str, values: str, **labels: str) -> Any:
    """A series of the operator's: the object's namespace, no pipeline."""
    return series(metric, values, job="", namespace="video", **labels)


@dataclass(frozen=True)
class Case:
    """Input series and what the alert says of them at `at`: the labels of each alert firing
    (besides severity), none when it must stay quiet."""

    inputs: list[Any]
    at: str
    fires: list[Labels] = field(default_factory=list)


def stream_labels(stream: str = "cam-0") -> Labels:
    return {**PLACE, "stream": stream}


def state(stream: str, value: str) -> Any:
    return series(
        "heron_ingest_stream_state", "1x20", stream=stream, heron_ingest_stream_state=value
    )


def fps(inferred: str, published: str = "0+1500x30", decoded: str = "0+1500x30") -> list[Any]:
    """One stream of a 25 fps source: per-minute counts of ingest and inference."""
    return [
        series("heron_ingest_source_frames_per_second", "25x30", stream="cam-0"),
        series("heron_ingest_frames_decoded_total", decoded, stream="cam-0"),
        series("heron_ingest_frames_published_total", published, stream="cam-0"),
        series("heron_inference_stream_frames_total", inferred, stream="cam-0", version="1"),
    ]


def delivery(count_in_10s_bucket: str) -> list[Any]:
    """A delivery-latency histogram of the tracker reading META, every delivery 2.5-10 s late."""
    buckets = {"1.0": "0x20", "2.5": "0x20", "10.0": count_in_10s_bucket}
    out = [
        series("heron_bus_delivery_latency_seconds_bucket", v, topic=META, group="tracker", le=le)
        for le, v in buckets.items()
    ]
    inf = series(
        "heron_bus_delivery_latency_seconds_bucket",
        count_in_10s_bucket,
        topic=META,
        group="tracker",
        le="+Inf",
    )
    return [*out, inf]


def backlog(topic: str, lag: str) -> list[Any]:
    return [
        series("heron_bus_group_lag_messages", lag, topic=topic, group="tracker"),
        series("heron_bus_group_pending_messages", "0x20", topic=topic, group="tracker"),
    ]


def dead_letters(values: str) -> Any:
    return series(
        "heron_bus_dead_lettered_total", values, topic=META, group="tracker", reason="bad_metadata"
    )


META_GROUP = {**PLACE, "topic": META, "group": "tracker"}
ROLLOUT = {"namespace": "video", "rollout": "r1"}
PHASE = "heron_operator_rollout_phase"
STARTED = "heron_operator_rollout_phase_started_timestamp_seconds"

# Every alert of the file: (cases that fire it, cases where it must stay quiet).
CASES: dict[str, tuple[list[Case], list[Case]]] = {
    "HeronStreamDown": (
        [
            Case([state("cam-0", "reconnecting")], "5m", [stream_labels()]),
            # Playing, yet nothing decoded for minutes: a stalled source not yet noticed.
            Case(
                [state("cam-0", "playing"), series("heron_ingest_frames_decoded_total", "7x20",
                                                   stream="cam-0")],
                "8m",
                [stream_labels()],
            ),
        ],
        [
            Case(
                [state("cam-0", "playing"), series("heron_ingest_frames_decoded_total",
                                                   "0+1500x20", stream="cam-0")],
                "8m",
            ),
            Case([state("cam-0", "eos")], "8m"),  # a file that ended is not down
            Case([state("cam-0", "reconnecting")], "1m"),  # not for 2 minutes yet
        ],
    ),
    "HeronFpsBelowSource": (
        [Case(fps(inferred="0+600x30"), "20m", [stream_labels()])],  # 10 of 25 fps
        [
            Case(fps(inferred="0+1500x30"), "20m"),
            # drop-frame-interval 2: half the frames are skipped on purpose.
            Case(fps(inferred="0+750x30", published="0+750x30"), "20m"),
        ],
    ),
    "HeronFramesDropped": (
        [
            Case(
                [
                    series("heron_ingest_frames_decoded_total", "0+1500x30", stream="cam-0"),
                    series("heron_streammux_frames_dropped_total", "0+300x30", stream="cam-0",
                           reason="overwritten"),
                ],
                "20m",
                [stream_labels()],
            )
        ],
        [
            Case(
                [
                    series("heron_ingest_frames_decoded_total", "0+1500x30", stream="cam-0"),
                    series("heron_ingest_frames_skipped_total", "0+750x30", stream="cam-0"),
                    series("heron_streammux_frames_dropped_total", "0+15x30", stream="cam-0",
                           reason="overwritten"),
                ],
                "20m",
            )
        ],
    ),
    "HeronMetadataLagHigh": (
        [
            Case(backlog(META, "5000x20"), "10m", [META_GROUP]),
            Case(delivery("0+60x20"), "10m", [META_GROUP]),
        ],
        [
            Case([*backlog(META, "10x20"), *backlog("heron:frames:cam-0", "5000x20")], "10m"),
        ],
    ),
    "HeronDeadLettersGrowing": (
        [Case([dead_letters("0+1x30")], "20m", [{**META_GROUP, "reason": "bad_metadata"}])],
        [Case([dead_letters("0 0 0 5x30")], "20m")],  # one burst, long over
    ),
    "HeronTritonModelNotReady": (
        [
            Case(
                [series("heron_inference_backend_ready", "0x10", backend="triton", model="det")],
                "5m",
                [{**PLACE, "pod": "p1", "model": "det"}],
            )
        ],
        [
            Case(
                [
                    series("heron_inference_backend_ready", "1x10", backend="triton", model="det"),
                    series("heron_inference_backend_ready", "0x10", backend="onnxruntime",
                           model="det", pod="p2"),
                ],
                "5m",
            )
        ],
    ),
    "HeronEngineGateFailed": (
        [
            Case(
                [operator("heron_operator_engine_build_gate_passed", "0x5", build="b1",
                          model="det", version="2")],
                "1m",
                [{"namespace": "video", "build": "b1", "model": "det", "version": "2"}],
            )
        ],
        [
            Case(
                [operator("heron_operator_engine_build_gate_passed", "1x5", build="b1",
                          model="det", version="2")],
                "1m",
            )
        ],
    ),
    "HeronRolloutStuck": (
        [
            Case(
                [operator(PHASE, "1x30", rollout="r1", phase="Loading"),
                 operator(STARTED, "0x30", rollout="r1")],
                "20m",
                [ROLLOUT],
            )
        ],
        [
            # A canary soaks as long as its spec says.
            Case(
                [operator(PHASE, "1x30", rollout="r1", phase="Canary"),
                 operator(STARTED, "0x30", rollout="r1")],
                "20m",
            ),
            Case(
                [operator(PHASE, "1x30", rollout="r1", phase="Loading"),
                 operator(STARTED, "600x30", rollout="r1")],
                "20m",
            ),
        ],
    ),
    "HeronServiceTargetDown": (
        [
            Case(
                [series("up", "1 1 0x10", endpoint="metrics-infer")],
                "6m",
                [{**PLACE, "job": "heron-pipelines", "pod": "p1", "endpoint": "metrics-infer"}],
            )
        ],
        [Case([series("up", "1x10", endpoint="metrics-infer")], "6m")],
    ),
    "HeronServiceNotRunning": (
        [
            Case(
                [series("heron_service_up", "0x10", service="tracker")],
                "8m",
                [{**PLACE, "job": "heron-pipelines", "pod": "p1", "service": "tracker"}],
            )
        ],
        [Case([series("heron_service_up", "1x10", service="tracker")], "8m")],
    ),
    "HeronBusBackpressure": (
        [
            Case(
                [series("heron_bus_backpressure_wait_seconds_total", "0+48x30", topic=META)],
                "10m",
                [{**PLACE, "pod": "p1", "topic": META}],
            )
        ],
        [Case([series("heron_bus_backpressure_wait_seconds_total", "0+6x30", topic=META)], "10m")],
    ),
    "HeronInferenceBackendUnavailable": (
        [
            Case(
                [series("heron_inference_backend_unavailable_total", "0+6x30")],
                "10m",
                [{**PLACE, "pod": "p1"}],
            )
        ],
        [Case([series("heron_inference_backend_unavailable_total", "0x30")], "10m")],
    ),
    "HeronTritonDown": (
        [Case([series("up", "0x10", job="heron-triton")], "5m",
              [{**PLACE, "job": "heron-triton", "pod": "p1"}])],
        [Case([series("up", "1x10", job="heron-triton")], "5m")],
    ),
    "HeronRedisDown": (
        [Case([series("redis_up", "0x10", job="heron-redis")], "3m",
              [{**PLACE, "job": "heron-redis", "pod": "p1"}])],
        [Case([series("redis_up", "1x10", job="heron-redis"),
               series("up", "1x10", job="heron-redis")], "3m")],
    ),
}  # fmt: skip


def rule_file() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(RULES.read_text())
    return loaded


def alert_rules() -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in rule_file()["groups"] for r in g["rules"] if "alert" in r}


def run_promtool_tests(promtool: str, tests: list[dict[str, Any]], folder: Path) -> None:
    """The file without annotations (promtool would compare them too; `check rules` checks
    their templates) and `tests`, through `promtool test rules`."""
    rules = rule_file()
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (folder / "rules.yaml").write_text(yaml.safe_dump(rules, sort_keys=False))
    spec = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}
    (folder / "tests.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    done = subprocess.run(
        [promtool, "test", "rules", "tests.yaml"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_accepts_the_file(promtool: str) -> None:
    done = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_has_a_case_that_fires_and_one_that_does_not() -> None:
    assert sorted(CASES) == sorted(alert_rules())
    for name, (fires, quiet) in CASES.items():
        assert fires and all(c.fires for c in fires), name
        assert quiet and not any(c.fires for c in quiet), name


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_alert_fires_only_when_it_should(promtool: str, name: str, tmp_path: Path) -> None:
    fires, quiet = CASES[name]
    severity = alert_rules()[name]["labels"]["severity"]
    tests = [
        {
            "interval": "1m",
            "input_series": case.inputs,
            "alert_rule_test": [
                {
                    "eval_time": case.at,
                    "alertname": name,
                    "exp_alerts": [
                        {"exp_labels": {**labels, "severity": severity}} for labels in case.fires
                    ],
                }
            ],
        }
        for case in [*fires, *quiet]
    ]
    run_promtool_tests(promtool, tests, tmp_path)


def test_the_recording_rules_give_known_answers(promtool: str, tmp_path: Path) -> None:
    """Out of the pipeline: the overlay's drawn frames where it runs, inference's elsewhere;
    drops by reason (not the frame topics' trims: those count entries already read); a
    group's backlog once however many replicas report it."""
    other = {"heron_dev_pipeline": "cams2"}
    inputs = [
        series("heron_overlay_frames_total", "0+600x10", stream="cam-0", result="drawn"),
        series("heron_inference_stream_frames_total", "0+1200x10", stream="cam-0", version="1"),
        series("heron_inference_stream_frames_total", "0+300x10", stream="cam-9", version="1",
               **other),
        series("heron_ingest_frames_skipped_total", "0+60x10", stream="cam-0"),
        series("heron_bus_dropped_total", "0+6000x10", topic="heron:frames:cam-0"),
        series("heron_streammux_frames_dropped_total", "0+180x10", stream="cam-0",
               reason="overwritten"),
        series("heron_overlay_frames_total", "0+240x10", stream="cam-0", result="overwritten"),
        series("heron_overlay_frames_total", "0+6000x10", stream="cam-0", result="duplicate"),
        *backlog(META, "40x10"),
        *[{**s, "series": s["series"].replace("p1", "p2")} for s in backlog(META, "40x10")],
    ]  # fmt: skip

    def expect(record: str, *samples: tuple[Labels, float]) -> dict[str, Any]:
        return {
            "expr": record,
            "eval_time": "5m",
            "exp_samples": [
                {"labels": f"{record}{{{selector(lab)}}}", "value": value} for lab, value in samples
            ],
        }

    dropped = "pipeline_stream_reason:heron_frames_dropped:rate1m"
    tests = [
        {
            "interval": "1m",
            "input_series": inputs,
            "promql_expr_test": [
                expect(
                    "pipeline_stream:heron_fps_out:rate1m",
                    (stream_labels(), 10.0),
                    ({**PLACE, **other, "stream": "cam-9"}, 5.0),
                ),
                expect(
                    dropped,
                    ({**stream_labels(), "reason": "ingest_skipped"}, 1.0),
                    ({**stream_labels(), "reason": "streammux_overwritten"}, 3.0),
                    ({**stream_labels(), "reason": "overlay_overwritten"}, 4.0),
                ),
                expect("pipeline_topic_group:heron_bus_backlog_messages:max", (META_GROUP, 40.0)),
            ],
        }
    ]
    run_promtool_tests(promtool, tests, tmp_path)


def test_each_threshold_is_a_chart_value_with_the_same_default() -> None:
    defaults = yaml.safe_load(VALUES.read_text())["monitoring"]["rules"]
    marked = THRESHOLD.findall(RULES.read_text())
    assert {key for _, key in marked} == {
        "framesDroppedRatio",
        "backpressureWaitRatio",
        "fpsBelowSourceRatio",
        "metadataLagSeconds",
        "metadataBacklogMessages",
        "rolloutStuckSeconds",
    }
    for number, key in marked:
        assert float(number) == float(defaults[key]), key


def metric_names(expr: str) -> set[str]:
    """Heron's metric names an expression reads (recording rules' names, `a:b:c`, aside)."""
    found = set(re.findall(r"(?<![:\w])(heron_[a-z_]+)(?![:\w])", expr))
    found -= {"heron_dev_pipeline"}  # the PodMonitor's target label
    return {re.sub(r"_(bucket|sum|count)$", "", n) for n in found}


def operator_metrics() -> set[str]:
    """What docs/observability.md says the operator exports (its metrics come later)."""
    section = DOC.read_text().partition("## Operator metrics")[2].partition("\n## ")[0]
    return set(re.findall(r"^\| `(heron_operator_[a-z_]+)`", section, re.MULTILINE))


def test_the_rules_read_only_metrics_that_exist() -> None:
    services = REPO / "services" / "heron"
    source = "".join(p.read_text() for p in services.rglob("*.py"))
    defined = set(re.findall(r'"(heron_[a-z_]+)"', source)) | operator_metrics()
    assert "heron_operator_engine_build_gate_passed" in defined
    for group in rule_file()["groups"]:
        for rule in group["rules"]:
            used = metric_names(rule["expr"])
            name = rule.get("alert", rule.get("record"))
            assert used <= defined, (name, used - defined)


def test_every_alert_has_a_runbook_paragraph() -> None:
    text = DOC.read_text()
    for name, rule in alert_rules().items():
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"]), name
        assert rule["annotations"]["runbook_url"].endswith(f"observability.md#{name.lower()}")
        assert f"\n### {name}\n" in text, f"docs/observability.md has no runbook for {name}"
