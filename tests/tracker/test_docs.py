"""docs/tracker.md: the Python snippet runs and prints what the doc says; the YAML loads."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest
from heron.core.config.tracker_config import read_ll_config
from heron.tracker import TrackerKind

DOC = Path(__file__).resolve().parents[2] / "docs" / "tracker.md"
TEXT = DOC.read_text()
PYTHON = re.findall(r"```python\n(.*?)```", TEXT, flags=re.DOTALL)
YAML = re.findall(r"```yaml\n(.*?)```", TEXT, flags=re.DOTALL)


def test_the_python_snippet_prints_what_the_doc_says() -> None:
    (code,) = PYTHON
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(DOC), "exec"), {})
    printed = re.search(r"prints `(.*?)`", TEXT)
    assert printed is not None
    assert out.getvalue().strip() == printed.group(1)


@pytest.mark.parametrize("text", [y for y in YAML if "TargetManagement" in y])
def test_the_ll_config_example_loads(tmp_path: Path, text: str) -> None:
    path = tmp_path / "tracker.yml"
    path.write_text(text)
    params, _, diags = read_ll_config(path)
    assert not diags.items
    assert params.heron.tracker is TrackerKind.BYTETRACK
