"""Every example of the docs' "Client and CLI" section runs, against a server of fakes: the
Python snippets as written, each `$ heron ...` command with exit code 0 (and the output the
page shows for the `streams` and `models` commands)."""

from __future__ import annotations

import re
import shlex
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from heron.cli.main import app
from typer.testing import CliRunner

from tests.client.client_fakes import Fakes, serving
from tests.client.test_client import PNG

DOCS = Path(__file__).resolve().parents[2] / "docs"
HEADING = "## Client and CLI"
ADDRESSES = ("127.0.0.1:50051", "127.0.0.1:50052")


def section() -> str:
    """The section, from docs/grpc.md once it is merged there, else docs/grpc-client.md."""
    for page in ("grpc.md", "grpc-client.md"):
        path = DOCS / page
        if path.is_file() and HEADING in (text := path.read_text()):
            start = text.index(HEADING)
            end = text.find("\n## ", start + len(HEADING))
            return text[start : end if end != -1 else None]
    raise AssertionError(f"no {HEADING!r} section in docs/grpc.md or docs/grpc-client.md")


def python_snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", section(), flags=re.DOTALL)


def console_commands() -> list[tuple[str, list[str]]]:
    """Each `$ heron ...` line with the output lines the page shows under it."""
    commands: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```console\n(.*?)```", section(), flags=re.DOTALL):
        for line in block.splitlines():
            if line.startswith("$ "):
                commands.append((line[2:], []))
            elif line != "^C":
                commands[-1][1].append(line)
    return commands


@pytest.fixture
def target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A server of fakes with frames flowing, and face.png in the working folder."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "face.png").write_bytes(PNG)
    fakes = Fakes()
    fakes.detections.publish(60)
    stop = threading.Event()

    def flow() -> None:  # live frames, for the subscriptions that start from now
        while not stop.wait(0.05):
            fakes.detections.publish(1)

    feeder = threading.Thread(target=flow, daemon=True)
    feeder.start()
    with serving(fakes) as server:
        yield f"127.0.0.1:{server.port}"
    stop.set()
    feeder.join()


def _pointed_at(text: str, target: str) -> str:
    for address in ADDRESSES:
        text = text.replace(address, target)
    return text


def test_the_section_has_examples() -> None:
    assert len(python_snippets()) >= 3
    assert len(console_commands()) >= 5


@pytest.mark.parametrize("index", range(len(python_snippets())))
def test_python_snippet_runs(index: int, target: str) -> None:
    code = _pointed_at(python_snippets()[index], target)
    exec(compile(code, f"{HEADING} snippet {index}", "exec"), {})


def test_console_commands_run(target: str) -> None:
    runner = CliRunner()
    for command, shown in console_commands():
        args = shlex.split(_pointed_at(command, target))[1:]
        if "--server" not in args:
            args += ["--server", target]
        if args[0] == "watch" and "--limit" not in args:
            args += ["--limit", "1"]  # stands in for the Ctrl-C the page shows
        result = runner.invoke(app, args, env={"COLUMNS": "300", "HERON_TOKEN": ""})
        assert result.exit_code == 0, f"{command}: {result.output}"
        if args[0] in ("streams", "models"):
            assert result.stdout.splitlines() == shown, command
