"""The Python snippets of docs/training.md run as they are written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.training.test_job import voc16, write_spec

DOC = Path(__file__).resolve().parents[2] / "docs" / "training.md"
SNIPPETS = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


@pytest.mark.shared_data
@pytest.mark.parametrize("snippet", SNIPPETS, ids=[f"snippet-{i}" for i in range(len(SNIPPETS))])
def test_doc_snippet_runs(
    snippet: str, shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    # What the snippets name: a small spec (ResNet10) reading the KITTI labels of the class
    # convention (mask, no-mask; docs/data.md) and 16 real images as a VOC folder.
    spec = write_spec(tmp_path, 'arch: "resnet" num_layers: 10')
    text = spec.read_text().replace('key: "with_mask"', 'key: "mask"')
    text = text.replace('key: "without_mask"', 'key: "no-mask"')
    spec.write_text(text.replace('key: "mask_weared_incorrect"', 'key: "incorrect"'))
    voc16(shared_data, tmp_path / "voc")
    exec(compile(snippet, str(DOC), "exec"), {})


def test_the_doc_has_snippets() -> None:
    assert len(SNIPPETS) >= 1
