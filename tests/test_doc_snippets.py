"""The Python snippets in docs that are pure examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = ("detections.md", "evaluation.md", "postprocess.md")


def snippets(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), flags=re.DOTALL)


@pytest.mark.parametrize("page", PAGES)
def test_the_doc_has_snippets(page: str) -> None:
    assert snippets(page)


@pytest.mark.parametrize(
    ("page", "code"), [(page, code) for page in PAGES for code in snippets(page)]
)
def test_snippet_runs(page: str, code: str) -> None:
    exec(compile(code, str(DOCS / page), "exec"), {})
