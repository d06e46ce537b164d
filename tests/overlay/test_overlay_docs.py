"""The Python example of docs/overlay.md runs and prints what the doc says."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.overlay.app_config import REPO


def test_the_overlay_docs_example_runs() -> None:
    doc = (REPO / "docs" / "overlay.md").read_text(encoding="utf-8")
    code = re.findall(r"```python\n(.*?)```", doc, re.DOTALL)[0]
    expected = re.search(r"prints `(.*?)`", doc)
    assert expected is not None
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.strip() == expected.group(1)
