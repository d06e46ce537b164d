"""The committed generated code matches protos/, and messages round-trip."""

from __future__ import annotations

import filecmp
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from heron.core import streams
from heron.v1 import bus_pb2, detection_pb2, frame_pb2, stream_pb2
from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]


def test_generated_code_is_not_stale(tmp_path: Path) -> None:
    """Messages, gRPC stubs and both kinds of .pyi, as `make proto` writes them (the mypy
    plugins are the venv's, beside this interpreter)."""
    protos = sorted(str(p.relative_to(REPO / "protos")) for p in (REPO / "protos").rglob("*.proto"))
    outs = ("python_out", "grpc_python_out", "mypy_out", "mypy_grpc_out")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-Iprotos"]
        + [f"--{out}={tmp_path}" for out in outs]
        + protos,
        cwd=REPO,
        check=True,
        env=env,
    )
    generated = [*tmp_path.rglob("*_pb2*.py"), *tmp_path.rglob("*_pb2*.pyi")]
    assert any(p.name == "control_pb2_grpc.pyi" for p in generated)
    for path in generated:
        committed = REPO / "services" / path.relative_to(tmp_path)
        assert committed.exists(), f"{committed} is missing: run `make proto`"
        assert filecmp.cmp(path, committed, shallow=False), (
            f"{committed} is stale: run `make proto` and commit the result"
        )


def test_frame_metadata_round_trips() -> None:
    ref = frame_pb2.FrameRef(
        stream_id="cam0",
        frame_number=7,
        width=960,
        height=544,
        pixel_format=frame_pb2.PIXEL_FORMAT_BGR24,
        shm=frame_pb2.SharedMemorySlot(segment="heron-cam0", slot=3, size=960 * 544 * 3),
    )
    meta = detection_pb2.FrameMetadata(frame=ref, model_name="facemask", model_version="2")
    meta.objects.add(class_id=1, label="No-Mask", confidence=0.9, tracker_id=12).bbox.CopyFrom(
        detection_pb2.BoundingBox(left=10, top=20, width=30, height=40)
    )
    back = detection_pb2.FrameMetadata.FromString(meta.SerializeToString())
    assert back == meta
    assert back.frame.WhichOneof("location") == "shm"


def test_stream_event_and_dead_letter_round_trip() -> None:
    event = stream_pb2.StreamEvent(
        stream_id="cam0", reconnecting=stream_pb2.StreamEvent.Reconnecting(attempt=2)
    )
    assert stream_pb2.StreamEvent.FromString(event.SerializeToString()).WhichOneof("event") == (
        "reconnecting"
    )
    letter = bus_pb2.DeadLetter(stream="s", reason="bad", payload=b"\x00")
    assert bus_pb2.DeadLetter.FromString(letter.SerializeToString()).payload == b"\x00"


def test_stream_names_are_built_in_one_place() -> None:
    assert streams.frames("cam0").key == "heron:frames:cam0"
    assert streams.metadata("inference").retention is streams.Retention.KEEP_UNREAD
    assert streams.frames("cam0").retention is streams.Retention.DROP_OLDEST
    assert streams.dead_letter(streams.frames("cam0")).key == "heron:frames:cam0:dead"
    assert streams.frames("cam0").message_type == frame_pb2.FrameRef.DESCRIPTOR.full_name


@pytest.mark.parametrize("bad", ["", "a b", "../x", "x" * 200, "-lead"])
def test_bad_stream_ids_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a valid stream id"):
        streams.frames(bad)


def _floor(requirement: str) -> tuple[str, Version]:
    """('grpcio', Version('1.81.1')) of 'grpcio>=1.81.1,<2'."""
    req = Requirement(requirement)
    floors = [Version(s.version) for s in req.specifier if s.operator in (">=", "==")]
    assert floors, f"{requirement}: no lower bound"
    return req.name, max(floors)


def test_pyproject_declares_what_the_generated_code_needs() -> None:
    """The generated modules refuse a runtime older than the one that made them; a floor below
    that lets pip install a heron that fails at import (grpcio>=1.62 once, with 1.81.1 stubs)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = dict(_floor(r) for r in project["dependencies"])
    declared |= dict(_floor(r) for r in project["optional-dependencies"]["grpc"])
    generated = REPO / "services" / "heron" / "v1"
    for path in generated.glob("*_pb2_grpc.py"):
        stubs = re.search(r"GRPC_GENERATED_VERSION = '([\d.]+)'", path.read_text())
        assert stubs is not None, path
        assert declared["grpcio"] >= Version(stubs.group(1)), path.name
    for path in generated.glob("*_pb2.py"):
        found = re.search(
            r"ValidateProtobufRuntimeVersion\(\s*_runtime_version\.Domain\.PUBLIC,\s*(\d+),\s*"
            r"(\d+),\s*(\d+),",
            path.read_text(),
        )
        assert found is not None, path
        needed = Version(".".join(found.groups()))
        assert declared["protobuf"] >= needed, f"{path.name} needs protobuf>={needed}"
