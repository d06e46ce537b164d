"""The example in docs/rtsp.md runs, on a free port instead of 8554."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[3] / "docs" / "rtsp.md"


def test_the_docs_example_runs(rtsp_port: int) -> None:
    example = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)[0]
    assert "RtspServer(8554" in example
    exec(compile(example.replace("8554", str(rtsp_port)), str(DOC), "exec"), {})
