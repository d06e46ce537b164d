"""The chart's Grafana dashboards (charts/heron/dashboards/*.json) against Grafana's own schema,
with Grafana itself absent (../shared/NOTES.md): written by bench/dashboards.py from
grafana-foundation-sdk's typed builders (Grafana 11.6), read back by that SDK without a key
lost, type-checked by tsc as `satisfies Dashboard` of npm @grafana/schema (Grafana 13; installed
by scripts/install-grafana-schema.sh), and every query valid PromQL on metrics that exist.
Whether the queries return data from a running pipeline is tests/e2e/test_observability.py's.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO
from tests.support.dashboards import FOLDER, panels, resolve

RULES = REPO / "charts" / "heron" / "rules" / "heron.rules.yaml"
TSC = REPO / ".venv" / "node" / "node_modules" / ".bin" / "tsc"
FILES = [
    "heron-bus.json",
    "heron-inference.json",
    "heron-models.json",
    "heron-pipeline-overview.json",
]
# Metrics of other exporters a panel may read: DCGM's and Triton's (GPU nodes, Kubernetes).
FOREIGN = re.compile(r"\b(DCGM_[A-Z_]+|nv_[a-z_]+)\b")


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(FOLDER.glob("*.json"))}


def test_the_dashboards_are_what_the_generator_writes() -> None:
    pytest.importorskip("grafana_foundation_sdk")
    assert sorted(dashboards()) == FILES
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "dashboards.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def dropped(data: Any, back: Any, at: str = "") -> list[str]:
    """Paths of `data` that `back` lacks or holds otherwise (what a decoder did not know)."""
    if isinstance(data, dict) and isinstance(back, dict):
        return [p for k, v in data.items() for p in dropped(v, back.get(k), f"{at}.{k}")]
    if isinstance(data, list) and isinstance(back, list) and len(data) == len(back):
        return [p for i, (a, b) in enumerate(zip(data, back, strict=True)) for p in
                dropped(a, b, f"{at}[{i}]")]  # fmt: skip
    return [] if data == back else [at or "."]


@pytest.mark.parametrize("name", FILES)
def test_grafanas_sdk_reads_every_key(name: str) -> None:
    """The SDK's decoder keeps what it knows: a key it drops is not Grafana 11.6's."""
    pytest.importorskip("grafana_foundation_sdk")
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.cog.plugins import register_default_plugins
    from grafana_foundation_sdk.models.dashboard import Dashboard

    register_default_plugins()  # panel options and queries decode by panel type
    data = dashboards()[name]
    back = json.loads(json.dumps(Dashboard.from_json(data), cls=JSONEncoder))
    assert dropped(data, back) == []
    bad = json.loads(json.dumps(data))
    bad["panels"][0]["options"]["legendd"] = {}
    assert dropped(bad, json.loads(json.dumps(Dashboard.from_json(bad), cls=JSONEncoder))) == [
        ".panels[0].options.legendd"
    ]


def test_grafanas_schema_types_accept_them(tmp_path: Path) -> None:
    """`(dashboard JSON) satisfies Dashboard` for each, through tsc; a wrong key is refused."""
    if not TSC.is_file():
        pytest.skip(f"{TSC} missing: scripts/install-grafana-schema.sh installs it")
    for name, data in dashboards().items():
        write_check(tmp_path / f"{Path(name).stem}.ts", data)
    wrong = dashboards()["heron-bus.json"]
    wrong["panels"][0]["gridPos"]["w"] = "wide"
    write_check(tmp_path / "wrong.ts", wrong)
    (tmp_path / "tsconfig.json").write_text(
        json.dumps(
            {
                "compilerOptions": {
                    "strict": True,
                    "noEmit": True,
                    "module": "esnext",
                    "moduleResolution": "bundler",
                    "target": "es2022",
                    "skipLibCheck": True,
                    "typeRoots": [],
                    "baseUrl": ".",
                    "paths": {"@grafana/schema": [str(TSC.parents[1] / "@grafana" / "schema")]},
                },
                "include": ["*.ts"],
            }
        )
    )
    done = subprocess.run(
        [str(TSC), "-p", "tsconfig.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    errors = [line for line in done.stdout.splitlines() if "error TS" in line]
    assert errors and all(line.startswith("wrong.ts(") for line in errors), done.stdout
    assert "'string' is not assignable to type 'number'" in done.stdout


def write_check(path: Path, data: dict[str, Any]) -> None:
    path.write_text(
        'import type { Dashboard } from "@grafana/schema";\n\n'
        f"const dashboard = {json.dumps(data, indent=2)} satisfies Dashboard;\n"
        "export default dashboard;\n"
    )


def test_every_panel_queries_prometheus_through_the_datasource_variable() -> None:
    for name, data in dashboards().items():
        variables = [v["name"] for v in data["templating"]["list"]]
        assert variables[:3] == ["datasource", "namespace", "pipeline"], name
        assert data["uid"] == Path(name).stem and len(data["uid"]) <= 40
        for panel in data["panels"]:
            where = f"{name}: {panel['title']}"
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
            assert panel["targets"] and panel.get("description"), where
            assert {t["datasource"]["uid"] for t in panel["targets"]} == {"${datasource}"}, where


def test_every_query_is_valid_promql(promtool: str, tmp_path: Path) -> None:
    """promtool parses each query, its variables replaced, as the expression of a rule."""
    rules = [
        {"record": f"panel_{n}", "expr": resolve(expr)}
        for n, expr in enumerate(e for p in panels() for e in p.exprs)
    ]
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    done = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def recorded() -> set[str]:
    return {r["record"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]
            if "record" in r}  # fmt: skip


def test_panels_read_metrics_that_exist_or_say_what_they_need() -> None:
    """A query reads Heron's metrics or the rules' records; a panel reading the operator's,
    DCGM's or Triton's says so first in its description."""
    source = "".join(p.read_text() for p in (REPO / "services" / "heron").rglob("*.py"))
    defined = set(re.findall(r'"(heron_[a-z_]+)"', source)) | recorded()
    for panel in panels():
        for expr in panel.exprs:
            names = set(re.findall(r"\b([a-z_]+:[a-z0-9_:]+|heron_[a-z_]+)\b", expr))
            names = {re.sub(r"_(bucket|sum|count)$", "", n) for n in names} - {"heron_dev_pipeline"}
            ours = {n for n in names if not n.startswith("heron_operator_")}
            assert ours <= defined, (panel.title, ours - defined)
        elsewhere = any(FOREIGN.search(e) or "heron_operator_" in e for e in panel.exprs)
        assert elsewhere == bool(panel.needs), f"{panel.dashboard}: {panel.title}"


def test_the_latency_p95_panels_show_exemplars_read_from_the_buckets() -> None:
    """Prometheus keeps exemplars on scraped buckets, never on a recorded series: a query that
    asks Grafana for them reads a histogram's `_bucket`; every latency p95 panel asks."""
    asking = set()
    for panel in panels():
        for expr in panel.exemplar_exprs:
            assert re.search(r"\bheron_[a-z_]+_seconds_bucket\{", expr), (panel.title, expr)
            asking.add((panel.dashboard, panel.title))
    assert asking == {
        ("heron-pipeline-overview.json", "Latency from capture to the sinks"),
        ("heron-pipeline-overview.json", "Stage latency, p95"),
        ("heron-inference.json", "Inference stage latency, p50 and p95"),
        ("heron-bus.json", "Delivery latency, p95"),
    }
