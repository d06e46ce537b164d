"""Every bad input is refused clearly (issue 21): the corpus in tests/data/bad/cases.yaml.

Each case runs the real `heron` command in-process (typer's CliRunner on heron.cli.main's app)
in a copy of tests/data/bad, and must end with its exit code (never 0), no traceback and no
escaped exception, and every expected fragment in the output: the file and line, field or
option, what was expected and what came. docs/development.md says how to add a case.
"""

from __future__ import annotations

import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from heron.cli.main import app
from typer.testing import CliRunner

CORPUS = Path(__file__).resolve().parent / "data" / "bad"
KEYS = {"id", "run", "exit", "expect", "skip_if"}
# rich draws a usage error in a box and wraps it to the terminal: fold both away.
_BORDERS = re.compile(r"[│╭╮╰╯─]+")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Case:
    id: str
    argv: list[str]
    exit: int
    expect: list[str]
    skip_if: str | None


def _cases() -> list[Case]:
    raw: list[dict[str, Any]] = yaml.safe_load((CORPUS / "cases.yaml").read_text())
    cases = []
    for entry in raw:
        unknown = set(entry) - KEYS
        assert not unknown, f"case {entry.get('id')}: unknown keys {sorted(unknown)}"
        expect = entry["expect"]
        cases.append(
            Case(
                id=entry["id"],
                argv=shlex.split(entry["run"]),
                exit=int(entry.get("exit", 1)),
                expect=[expect] if isinstance(expect, str) else list(expect),
                skip_if=entry.get("skip_if"),
            )
        )
    return cases


CASES = _cases()


def fold(text: str) -> str:
    return _SPACE.sub(" ", _BORDERS.sub(" ", text)).strip()


def _cuda() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - the train extra is installed where tests run
        return False
    return bool(torch.cuda.is_available())


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the corpus: commands write outputs (under out/) and the originals stay."""
    copy = tmp_path_factory.mktemp("bad") / "bad"
    shutil.copytree(CORPUS, copy)
    return copy


def test_the_corpus_is_large_and_its_ids_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) >= 100
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]
    assert all(c.exit != 0 and c.expect and all(c.expect) for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_clearly(
    case: Case, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if case.skip_if == "cuda" and _cuda():
        pytest.skip("needs a machine without a CUDA GPU")
    monkeypatch.chdir(corpus)
    monkeypatch.delenv("REDIS_URL", raising=False)
    result = CliRunner().invoke(app, case.argv, env={"COLUMNS": "200", "NO_COLOR": "1"})
    output = result.output
    escaped = result.exception if not isinstance(result.exception, SystemExit) else None
    assert escaped is None, f"{case.id}: {type(escaped).__name__}: {escaped}\n{output}"
    assert "Traceback (most recent call last)" not in output, output
    assert result.exit_code == case.exit, f"{case.id}: exit {result.exit_code}\n{output}"
    folded = fold(output)
    missing = [e for e in case.expect if fold(e) not in folded]
    assert not missing, f"{case.id}: missing {missing} in:\n{output}"
