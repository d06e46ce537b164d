"""Heron's Grafana dashboards, built with grafana-foundation-sdk's typed builders (Grafana
11.6's dashboard schema) and written as JSON into charts/heron/dashboards/, which the chart ships
as ConfigMaps for Grafana's dashboard sidecar (docs/observability.md).

    .venv/bin/python bench/dashboards.py           # write the JSON
    .venv/bin/python bench/dashboards.py --check   # exit 1, naming them, when one is stale

The panels read the recording rules of charts/heron/rules/heron.rules.yaml where one exists,
and select with the target labels the chart's PodMonitor adds (`namespace`,
`heron_dev_pipeline`). A panel whose metrics only a GPU node or the Kubernetes operator
exports says so first thing in its description ("Needs ..."): the live-Prometheus test
(tests/e2e/test_observability.py) requires every other panel to return data from `heron run`.

The latency p95 lines are computed from the histograms' buckets, with exemplars on: Prometheus
keeps exemplars on the scraped buckets only, never on a recorded series, so only such a query
can show the frames behind a slow p95 (docs/observability.md, "From a slow p95 to the frame").
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import common, prometheus, stat, timeseries
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.common import BigValueGraphMode, LegendDisplayMode

FOLDER = Path(__file__).resolve().parents[1] / "charts" / "heron" / "dashboards"
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
PIPE = 'namespace=~"$namespace", heron_dev_pipeline=~"$pipeline"'
STREAM = f'{PIPE}, stream=~"$stream"'
RATE = "$__rate_interval"
NEEDS_GPU = "Needs a GPU node: DCGM exporter or Triton metrics. "
NEEDS_TRITON = "Needs Triton (the chart's triton.enabled, scraped by its ServiceMonitor). "
NEEDS_OPERATOR = "Needs the operator's metrics (Kubernetes; docs/observability.md). "
EXEMPLARS = (
    " Dots: exemplars, one frame each (stream, frame; hover one); docs/observability.md, "
    '"From a slow p95 to the frame".'
)


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""
    exemplars: bool = False


def query(q: Query, ref: str) -> prometheus.Dataquery:
    target = prometheus.Dataquery().expr(q.expr).ref_id(ref).datasource(DATASOURCE)
    if q.exemplars:
        target = target.exemplar(True)
    return target.legend_format(q.legend) if q.legend else target


def p95(histogram: str, by: str, where: str, legend: str) -> Query:
    """A histogram's p95 per `by` from its buckets, with exemplars (grouped as the rules'
    `:p95_1m` records are, over Grafana's rate interval)."""
    expr = (
        f"histogram_quantile(0.95, sum by (namespace, heron_dev_pipeline, {by}, le) "
        f"(rate({histogram}_bucket{{{where}}}[{RATE}])))"
    )
    return Query(expr, legend, exemplars=True)


def graph(
    title: str, description: str, unit: str, *queries: Query, width: int = 12
) -> timeseries.Panel:
    """A time series panel of `queries`, legend as a table with the last and max values."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(8)
        .legend(
            common.VizLegendOptions()
            .display_mode(LegendDisplayMode.TABLE)
            .show_legend(True)
            .calcs(["lastNotNull", "max"])
        )
    )
    for ref, q in zip("ABCDEFGH", queries, strict=False):
        panel = panel.with_target(query(q, ref))
    return panel


def big_number(title: str, description: str, unit: str, *queries: Query) -> stat.Panel:
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(6)
        .height(4)
        .graph_mode(BigValueGraphMode.NONE)
    )
    for ref, q in zip("ABCDEFGH", queries, strict=False):
        panel = panel.with_target(query(q, ref))
    return panel


def variables(*, streams: bool) -> list[db.DatasourceVariable | db.QueryVariable]:
    """Data source, namespace, pipeline (the pod label heron.dev/pipeline), and the streams."""

    def labels(name: str, label: str, of: str) -> db.QueryVariable:
        return (
            db.QueryVariable(name)
            .label(label)
            .datasource(DATASOURCE)
            .query(f"label_values({of}, {name if name != 'pipeline' else 'heron_dev_pipeline'})")
            .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(model.VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )

    found: list[db.DatasourceVariable | db.QueryVariable] = [
        db.DatasourceVariable("datasource").label("Prometheus").type("prometheus"),
        labels("namespace", "Namespace", "heron_service_up"),
        labels("pipeline", "Pipeline", 'heron_service_up{namespace=~"$namespace"}'),
    ]
    if streams:
        of = f"heron_ingest_frames_decoded_total{{{PIPE}}}"
        found.append(labels("stream", "Stream", of))
    return found


def dashboard(
    uid: str, title: str, description: str, panels: Sequence[Any], *, streams: bool = False
) -> model.Dashboard:
    board = (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["heron"])
        .editable()
        .time("now-1h", "now")
        .refresh("30s")
        .timezone("browser")
    )
    for variable in variables(streams=streams):
        board = board.with_variable(variable)
    for panel in panels:
        board = board.with_panel(panel)
    return board.build()


# --- the dashboards --------------------------------------------------------------------------


def pipeline_overview() -> model.Dashboard:
    return dashboard(
        "heron-pipeline-overview",
        "Heron / Pipeline overview",
        "Per stream: frames per second in and out against the source's rate, latency from "
        "capture to the sinks, drops and why, reconnects; per stage: latency.",
        [
            graph(
                "Frames per second per stream, against the source",
                "Source: the rate the media states. In: frames ingest published. Out: frames the "
                "overlay drew (frames inference gave metadata where there is no overlay).",
                "fps",
                Query(f"pipeline_stream:heron_source_fps:max{{{STREAM}}}", "{{stream}} source"),
                Query(f"pipeline_stream:heron_fps_in:rate1m{{{STREAM}}}", "{{stream}} in"),
                Query(f"pipeline_stream:heron_fps_out:rate1m{{{STREAM}}}", "{{stream}} out"),
            ),
            graph(
                "Latency from capture to the sinks",
                "From ingest decoding a frame to every sink having taken it, p50 and p95."
                + EXEMPLARS,
                "s",
                Query(f"pipeline_stream:heron_capture_to_sink_seconds:p50_1m{{{STREAM}}}",
                      "{{stream}} p50"),
                p95("heron_overlay_capture_to_sink_seconds", "stream", STREAM, "{{stream}} p95"),
            ),
            graph(
                "Stage latency, p95",
                "Time one stage spends on one unit of work (a frame, or a batch of frames)."
                + EXEMPLARS + " A batch's exemplar is its frame captured first.",
                "s",
                p95("heron_stage_latency_seconds", "stage", PIPE, "{{stage}}"),
            ),
            graph(
                "Stage latency, p50",
                "Time one stage spends on one unit of work (a frame, or a batch of frames).",
                "s",
                Query(f"pipeline_stage:heron_stage_latency_seconds:p50_1m{{{PIPE}}}", "{{stage}}"),
            ),
            graph(
                "Frames dropped per second, by reason",
                "ingest_skipped: drop-frame-interval; streammux_*: read but not batched "
                "(overwritten, segment_gone, bad_frame); overlay_*: not drawn.",
                "fps",
                Query(f"pipeline_stream_reason:heron_frames_dropped:rate1m{{{STREAM}}}",
                      "{{stream}} {{reason}}"),
            ),
            graph(
                "Reconnects and source errors",
                "Reconnect attempts of live sources; errors, fatal ones ending the stream.",
                "short",
                Query(f"sum by (stream) (increase(heron_ingest_reconnects_total{{{STREAM}}}[1h]))",
                      "{{stream}} reconnects (1h)"),
                Query(f"sum by (stream, fatal) "
                      f"(increase(heron_ingest_errors_total{{{STREAM}}}[1h]))",
                      "{{stream}} errors, fatal={{fatal}} (1h)"),
            ),
            big_number(
                "Streams playing",
                "Streams whose source delivers frames now.",
                "short",
                Query(f"count(heron_ingest_stream_state{{{PIPE}, "
                      'heron_ingest_stream_state="playing"} == 1)'),
            ),
            big_number(
                "Services running",
                "Services whose main loop runs (heron_service_up).",
                "short",
                Query(f"sum(heron_service_up{{{PIPE}}})"),
            ),
        ],
        streams=True,
    )  # fmt: skip


def inference() -> model.Dashboard:
    infer = f'{PIPE}, stage=~"inference.*|detector.*"'
    return dashboard(
        "heron-inference",
        "Heron / Inference",
        "Frames inferred and passed through, batch sizes, latency of the inference stages, the "
        "muxer's batching; Triton's queue time and GPU utilisation where they run.",
        [
            graph(
                "Frames per second, by result",
                "inferred, passed_through (interval skipped them), dead_lettered.",
                "fps",
                Query(f"sum by (result) (rate(heron_inference_frames_total{{{PIPE}}}[{RATE}]))",
                      "{{result}}"),
            ),
            graph(
                "Frames per backend call",
                "Mean frames in one call of the backend, and the muxer's batch fill (of its "
                "batch-size).",
                "short",
                Query(f"pipeline:heron_inference_batch_frames:mean1m{{{PIPE}}}", "frames per call"),
                Query(f"sum(rate(heron_streammux_batch_fill_ratio_sum{{{PIPE}}}[{RATE}])) / "
                      f"sum(rate(heron_streammux_batch_fill_ratio_count{{{PIPE}}}[{RATE}]))",
                      "muxer fill"),
            ),
            graph(
                "Inference stage latency, p50 and p95",
                "Preprocess, infer (the backend call) and postprocess, per unit of work."
                + EXEMPLARS + " A batch's exemplar is its frame captured first.",
                "s",
                Query(f"pipeline_stage:heron_stage_latency_seconds:p50_1m{{{infer}}}",
                      "{{stage}} p50"),
                p95("heron_stage_latency_seconds", "stage", infer, "{{stage}} p95"),
            ),
            graph(
                "Muxer wait, p95",
                "Time from a batch's first frame coming to the batch being pushed.",
                "s",
                Query(f"pipeline:heron_streammux_batch_wait_seconds:p95_1m{{{PIPE}}}", "wait p95"),
            ),
            graph(
                "Triton queue time per request",
                NEEDS_TRITON + "Time requests waited in Triton's queue, per model and version.",
                "s",
                Query('model_version:nv_inference_queue_seconds_per_request:rate1m'
                      '{namespace=~"$namespace"}', "{{model}} v{{version}}"),
            ),
            graph(
                "GPU utilisation",
                NEEDS_GPU + "DCGM exporter's DCGM_FI_DEV_GPU_UTIL, else Triton's "
                "nv_gpu_utilization.",
                "percent",
                Query("avg by (Hostname, gpu) (DCGM_FI_DEV_GPU_UTIL)", "{{Hostname}} GPU {{gpu}}"),
                Query('100 * avg by (gpu_uuid) (nv_gpu_utilization{namespace=~"$namespace"})',
                      "Triton {{gpu_uuid}}"),
            ),
            big_number(
                "Backend ready",
                "1 while the backend and its model answer ready (asked at each scrape).",
                "short",
                Query(f"min(heron_inference_backend_ready{{{PIPE}}})"),
            ),
            big_number(
                "Backend unavailable (1h)",
                "Inference calls that found the backend unavailable and were retried.",
                "short",
                Query(f"sum(increase(heron_inference_backend_unavailable_total{{{PIPE}}}[1h]))"),
            ),
        ],
    )  # fmt: skip


def models_and_rollouts() -> model.Dashboard:
    return dashboard(
        "heron-models",
        "Heron / Models and rollouts",
        "The model version each pipeline and stream runs, detections per version; the "
        "operator's EngineBuild gates and EngineRollout phases.",
        [
            graph(
                "Frames per second by model version",
                "The version each pipeline serves now: a canary shows as a second version.",
                "fps",
                Query(f"pipeline_version:heron_inference_frames:rate1m{{{PIPE}}}",
                      "{{heron_dev_pipeline}} v{{version}}"),
            ),
            graph(
                "Objects per inferred frame, by version",
                "What an EngineRollout's detectionRateDrift gate compares.",
                "short",
                Query(f"sum by (version) "
                      f"(rate(heron_inference_stream_objects_total{{{PIPE}}}[{RATE}])) / "
                      f"sum by (version) "
                      f"(rate(heron_inference_stream_inferred_total{{{PIPE}}}[{RATE}]))",
                      "v{{version}}"),
            ),
            graph(
                "Model and parameter changes (1h)",
                "SetModelVersions and SetParameters requests, by result.",
                "short",
                Query(f"sum by (result) "
                      f"(increase(heron_inference_model_version_updates_total{{{PIPE}}}[1h]))",
                      "versions {{result}}"),
                Query(f"sum by (result) "
                      f"(increase(heron_inference_parameter_updates_total{{{PIPE}}}[1h]))",
                      "parameters {{result}}"),
            ),
            graph(
                "Rollout phase",
                NEEDS_OPERATOR + "The phase each EngineRollout is in.",
                "short",
                Query("max by (rollout, phase) "
                      '(heron_operator_rollout_phase{namespace=~"$namespace"}) == 1',
                      "{{rollout}} {{phase}}"),
            ),
            graph(
                "Canary gates",
                NEEDS_OPERATOR + "Each gate's latest reading (fpsRatio, errorRate, "
                "detectionRateDrift, apDrop).",
                "short",
                Query('heron_operator_rollout_gate_value{namespace=~"$namespace"}',
                      "{{rollout}} {{gate}}"),
            ),
            graph(
                "Engine builds: AP drop and gate",
                NEEDS_OPERATOR + "The INT8 accuracy gate's AP drop, and whether it passed.",
                "short",
                Query('heron_operator_engine_build_ap_drop{namespace=~"$namespace"}',
                      "{{build}} AP drop"),
                Query('heron_operator_engine_build_gate_passed{namespace=~"$namespace"}',
                      "{{build}} passed"),
            ),
            graph(
                "Engine build and calibration time",
                NEEDS_OPERATOR + "Seconds the last build and calibration of each EngineBuild took.",
                "s",
                Query('heron_operator_engine_build_duration_seconds{namespace=~"$namespace"}',
                      "{{build}} build"),
                Query('heron_operator_engine_calibration_duration_seconds{namespace=~"$namespace"}',
                      "{{build}} calibration"),
            ),
            graph(
                "Operator reconcile errors",
                NEEDS_OPERATOR + "Handler runs that failed, by resource kind.",
                "short",
                Query(f"sum by (kind) (rate(heron_operator_reconcile_errors_total[{RATE}]))",
                      "{{kind}}"),
            ),
        ],
    )  # fmt: skip


def bus() -> model.Dashboard:
    return dashboard(
        "heron-bus",
        "Heron / Bus",
        "The Redis streams between the stages (topics): what each consumer group has left, how "
        "late deliveries come, dead letters, backpressure and reconnects.",
        [
            graph(
                "Backlog per consumer group",
                "Entries undelivered plus delivered and not yet acknowledged.",
                "short",
                Query(f"pipeline_topic_group:heron_bus_backlog_messages:max{{{PIPE}}}",
                      "{{group}} on {{topic}}"),
            ),
            graph(
                "Delivery latency, p95",
                "Time from publish to first delivery, per topic and group. Dots: exemplars, "
                "one message each (entry: its id on the topic, for XRANGE).",
                "s",
                p95("heron_bus_delivery_latency_seconds", "topic, group", PIPE,
                    "{{group}} on {{topic}}"),
            ),
            graph(
                "Acknowledged and dead-lettered per second",
                "Messages each group acknowledged; those it moved to the dead-letter stream, by "
                "reason.",
                "short",
                Query(f"sum by (topic, group) (rate(heron_bus_acked_total{{{PIPE}}}[{RATE}]))",
                      "{{group}} acked {{topic}}"),
                Query(f"pipeline_topic_reason:heron_bus_dead_lettered:rate5m{{{PIPE}}}",
                      "{{group}} dead {{reason}}"),
            ),
            graph(
                "Published per second, by topic",
                "Messages added to each topic.",
                "short",
                Query(f"sum by (topic) (rate(heron_bus_published_total{{{PIPE}}}[{RATE}]))",
                      "{{topic}}"),
            ),
            graph(
                "Backpressure",
                "Share of the time publishers waited for room in a full topic; publishes that "
                "gave up.",
                "percentunit",
                Query(f"sum by (topic) "
                      f"(rate(heron_bus_backpressure_wait_seconds_total{{{PIPE}}}[{RATE}]))",
                      "{{topic}} waiting"),
                Query(f"sum by (topic) "
                      f"(increase(heron_bus_backpressure_timeouts_total{{{PIPE}}}[1h]))",
                      "{{topic}} gave up (1h)"),
            ),
            graph(
                "Redis reconnects (1h)",
                "Retries after Redis went away, by topic and role.",
                "short",
                Query(f"sum by (topic, role) (increase(heron_bus_reconnects_total{{{PIPE}}}[1h]))",
                      "{{role}} {{topic}}"),
            ),
        ],
    )  # fmt: skip


DASHBOARDS = {
    "heron-pipeline-overview.json": pipeline_overview,
    "heron-inference.json": inference,
    "heron-models.json": models_and_rollouts,
    "heron-bus.json": bus,
}


# Fields of interval variables that the 11.6 SDK writes on every variable; Grafana's current
# schema (@grafana/schema 13) refuses them elsewhere.
INTERVAL_ONLY = ("auto", "auto_count", "auto_min")


def to_json(board: model.Dashboard) -> str:
    data = json.loads(json.dumps(board, cls=JSONEncoder))
    for variable in data.get("templating", {}).get("list", []):
        if variable["type"] != "interval":
            for key in INTERVAL_ONLY:
                variable.pop(key, None)
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--check", action="store_true", help="only compare; exit 1 when stale")
    p.add_argument("--out", type=Path, default=FOLDER)
    args = p.parse_args()
    stale = []
    for name, make in DASHBOARDS.items():
        path: Path = args.out / name
        text = to_json(make())
        if path.is_file() and path.read_text() == text:
            continue
        stale.append(name)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if args.check and stale:
        sys.exit(f"stale dashboards (run bench/dashboards.py): {', '.join(stale)}")
    print(f"{len(DASHBOARDS)} dashboards in {args.out}; {'stale' if args.check else 'written'}: "
          f"{', '.join(stale) or 'none'}")  # fmt: skip


if __name__ == "__main__":
    main()
