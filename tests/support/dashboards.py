"""The chart's Grafana dashboards (charts/heron/dashboards/*.json) as the tests read them: each
panel's queries, with Grafana's variables replaced the way Grafana would for one namespace and
pipeline, and whether the panel says it needs metrics only a GPU node or the operator exports."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO

FOLDER = REPO / "charts" / "heron" / "dashboards"
NEEDS = "Needs "  # how a panel's description starts when its metrics come from elsewhere


@dataclass(frozen=True)
class Panel:
    dashboard: str  # the file name
    title: str
    description: str
    exprs: list[str]
    exemplar_exprs: list[str]  # the queries that ask Grafana to show exemplars

    @property
    def needs(self) -> str:
        """The sentence naming what the panel's metrics need, "" when `heron run` has them."""
        if not self.description.startswith(NEEDS):
            return ""
        return self.description.split(". ", 1)[0]


def panels(folder: Path = FOLDER) -> list[Panel]:
    found = []
    for path in sorted(folder.glob("*.json")):
        for p in json.loads(path.read_text())["panels"]:
            targets = p.get("targets", [])
            exprs = [t["expr"] for t in targets]
            asking = [t["expr"] for t in targets if t.get("exemplar")]
            found.append(Panel(path.name, p["title"], p.get("description", ""), exprs, asking))
    return found


def resolve(expr: str, namespace: str = ".*", pipeline: str = ".*", rate: str = "1m") -> str:
    """`expr` as Grafana sends it: every variable replaced, `$__rate_interval` by `rate`."""
    values = {"namespace": namespace, "pipeline": pipeline, "stream": ".*"}
    expr = expr.replace("$__rate_interval", rate)
    return re.sub(r"\$(\w+)", lambda m: values[m.group(1)], expr)
