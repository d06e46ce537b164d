"""Every `heron ...` command the docs show exists, with every option it names, as written.

Code blocks and inline code of docs/*.md and README.md are read; each command line (backslash
continuations joined, shell operators and comments cut, `[...]` optional marks and `<...>`
placeholders kept as values) is walked through the real click tree of `heron`: the sub-commands
must exist, each option must be one the command has (a flag takes no value, an option one), and
there may be no more positional words than the command takes. Each command shown then answers
`--help`. A doc that drifts from the CLI fails here, naming the page and the line.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from heron.cli.main import app
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
PAGES = [*sorted((REPO / "docs").rglob("*.md")), REPO / "README.md"]
# Where a shell line stops being the command: pipes, redirections, command lists, comments.
CUT = re.compile(r"\s(\||>|2>|&&|;|#)(\s|$)|\s/\s")


@dataclass(frozen=True)
class Shown:
    page: str
    line: str

    @property
    def words(self) -> list[str]:
        text = re.sub(r"<[^>]*>", "VALUE", self.line)  # a placeholder is one value
        text = CUT.split(text, maxsplit=1)[0]
        return [w for w in text.replace("[", " ").replace("]", " ").split() if w != "..."]


def _commands(text: str) -> list[str]:
    """`heron ...` lines of the code blocks, and inline code spans that start with `heron `."""
    found = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S):
        for raw in re.sub(r"\\\n\s*", " ", block).splitlines():
            line = re.sub(r"^\s*(\$ )?(\S*\.venv/bin/)?", "", raw)
            if line.startswith("heron "):
                found.append(line)
    outside = re.sub(r"```.*?```", "", text, flags=re.S)
    found += re.findall(r"`(heron [^`]+)`", outside)
    return found


SHOWN = [Shown(p.relative_to(REPO).as_posix(), c) for p in PAGES for c in _commands(p.read_text())]


@functools.cache
def _tree() -> Any:
    return typer.main.get_command(app)


def _walk(shown: Shown) -> tuple[list[str], Any, list[str]]:
    """(the sub-command path, its command, the words after it). Typer carries its own click,
    so groups and parameters are told apart by what they have, not by click's classes."""
    command: Any = _tree()
    words, path = shown.words[1:], list[str]()
    while hasattr(command, "commands") and words and not words[0].startswith("-"):
        name = words[0]
        if "/" in name and all(part in command.commands for part in name.split("/")):
            return path, command, []  # `streams add/ls/rm`: several sub-commands named at once
        assert name in command.commands, (
            f"{shown.page}: `{shown.line}`: `{' '.join(['heron', *path])}` has no sub-command "
            f"{name!r} (it has {', '.join(sorted(command.commands))})"
        )
        command, path, words = command.commands[name], [*path, name], words[1:]
    return path, command, words


def _check_arguments(shown: Shown, command: Any, words: list[str]) -> None:
    kept = [p for p in command.params if p.param_type_name == "option"]
    options = {name: p for p in kept for name in [*p.opts, *p.secondary_opts]}
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    room = None if any(a.nargs == -1 for a in arguments) else sum(a.nargs for a in arguments)
    positional, i = 0, 0
    while i < len(words):
        word = words[i]
        if word.startswith("-") and word not in ("-", "--"):
            # `--min-batch/--opt-batch/--max-batch`: a doc's shorthand for several options.
            names = word.split("=", 1)[0].split("/")
            for name in names:
                assert name in options or name == "--help", (
                    f"{shown.page}: `{shown.line}`: {command.name} has no option {name} "
                    f"(it has {', '.join(sorted(options))})"
                )
            last = options.get(names[-1])
            takes_value = last is not None and not (last.is_flag or last.count)
            # A value left out in a doc's shorthand is no reason to read the next option as it.
            given = i + 1 < len(words) and not words[i + 1].startswith("--")
            i += 2 if takes_value and given and "=" not in word else 1
            continue
        positional += 1
        i += 1
    assert room is None or positional <= room, (
        f"{shown.page}: `{shown.line}`: {command.name} takes {room} positional argument(s), "
        f"the doc gives {positional}"
    )


def test_the_docs_show_commands() -> None:
    assert len(SHOWN) > 40
    assert {s.page for s in SHOWN} >= {"docs/training.md", "docs/engine.md", "docs/run.md"}


@pytest.mark.parametrize("shown", SHOWN, ids=[f"{s.page}:{s.line[:60]}" for s in SHOWN])
def test_a_shown_command_exists_with_every_option_it_names(shown: Shown) -> None:
    _, command, words = _walk(shown)
    _check_arguments(shown, command, words)


def test_every_command_shown_answers_help() -> None:
    paths = sorted({tuple(_walk(s)[0]) for s in SHOWN})
    runner = CliRunner()
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, f"heron {' '.join(path)} --help: {result.output}"
        assert "Usage:" in result.output


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("heron evaluate MODEL KITTI_DIR", "takes 0 positional argument(s), the doc gives 2"),
        ("heron calibrate --max-ap-dorp 1.0", "has no option --max-ap-dorp"),
        ("heron streams purge", "has no sub-command 'purge'"),
    ],
)
def test_a_doc_that_drifted_is_caught(line: str, problem: str) -> None:
    shown = Shown("docs/x.md", line)
    with pytest.raises(AssertionError, match=re.escape(problem)):
        _, command, words = _walk(shown)
        _check_arguments(shown, command, words)
