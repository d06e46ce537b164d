"""docs/framestore.md's example runs and prints what the page says."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.core.runtime.service_process import REPO

DOC = REPO / "docs" / "framestore.md"


def test_documented_example_prints_what_the_doc_says() -> None:
    text = DOC.read_text(encoding="utf-8")
    code = re.findall(r"```python\n(.*?)```", text, re.DOTALL)[0]
    expected = re.findall(r"prints\n\n```\n(.*?)```", text, re.DOTALL)[0]
    done = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == expected
    assert done.stderr == ""  # no resource-tracker warnings
