"""The snippet in docs/bus.md runs as written against a real Redis."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.conftest import REPO

DOC = REPO / "docs" / "bus.md"


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.DOTALL)


def test_docs_snippet_runs(redis_url: str) -> None:
    [snippet] = python_blocks(DOC.read_text())

    done = subprocess.run(
        [sys.executable, "-c", snippet],
        env={**os.environ, "REDIS_URL": redis_url},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout == "mask delivered 1 time(s)\n"
