"""The Python snippets of docs/data.md run as they are written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from heron.training.data.convert import convert_samples
from heron.training.data.formats import FORMATS, SourceFormat
from heron.training.data.split import SplitSettings, split_dataset, write_partitions

from tests.training.data.conftest import FIXTURES

DOC = Path(__file__).resolve().parents[3] / "docs" / "data.md"
SNIPPETS = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[f"snippet-{i}" for i in range(len(SNIPPETS))])
def test_doc_snippet_runs(snippet: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    info = FORMATS[SourceFormat.VOC]
    kitti = Path("data/kitti")
    convert_samples(
        list(info.read(FIXTURES / "voc", None)), kitti, class_map=info.default_class_map
    )
    write_partitions(split_dataset(SplitSettings(root=kitti, val_split=50)), Path("data/split"))
    exec(compile(snippet, str(DOC), "exec"), {})


def test_the_doc_has_snippets() -> None:
    assert len(SNIPPETS) >= 2
