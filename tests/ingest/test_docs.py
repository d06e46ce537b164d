"""The pipeline example in docs/ingest.md plans the streams the text says it does."""

from __future__ import annotations

import re
from pathlib import Path

from heron.core.config.pipeline_file import load_pipeline
from heron.core.plan.sources import plan_sources

DOC = Path(__file__).resolve().parents[2] / "docs" / "ingest.md"


def test_docs_pipeline_example(tmp_path: Path) -> None:
    match = re.search(r"```yaml\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert match, "docs/ingest.md lost its YAML example"
    path = tmp_path / "pipeline.yaml"
    path.write_text(match.group(1))
    planned = plan_sources(load_pipeline(path)[0])

    assert [p.spec.stream_id for p in planned] == ["source-0", "source-1", "source-2"]
    assert [p.target.live for p in planned] == [True, False, False]
    assert [p.spec.loop for p in planned] == [False, True, True]
    assert [p.spec.drop_frame_interval for p in planned] == [0, 3, 3]
    assert (planned[0].read_timeout_s, planned[0].max_attempts) == (5.0, -1)
