"""The end of a run: what the detector found, and where each output went."""

from __future__ import annotations

from pathlib import Path

import pytest
from heron.core.config.models import Pipeline
from heron.run.outputs import Found, output_lines


@pytest.mark.parametrize(
    ("found", "expected"),
    [
        (Found(), "objects found: none (no frame left the last stage)"),
        (Found(frames=125), "objects found: none in the 125 frame(s): the detector found nothing"),
        (
            Found({"No-Mask": 3, "Mask": 5}, frames_with_objects=4, frames=10, tracks=2),
            "objects found: 8 (Mask 5, No-Mask 3) in 4 of 10 frame(s); 2 track(s)",
        ),
        (Found({"Mask": 1}, 1, 1), "objects found: 1 (Mask 1) in 1 of 1 frame(s)"),
    ],
)
def test_the_found_line(found: Found, expected: str) -> None:
    assert found.line().startswith(expected)


def test_each_enabled_sink_says_where_its_output_went(tmp_path: Path) -> None:
    written = tmp_path / "out.mp4"
    written.write_bytes(b"")
    pipeline = Pipeline.model_validate(
        {
            "sources": {0: {"type": "uri", "enable": True, "uri": "file:///clip.mp4"}},
            "sinks": {
                0: {"type": "file", "enable": True, "output_file": written},
                1: {"type": "rtsp", "enable": True, "rtsp_port": 8600},
                2: {"type": "file", "enable": True, "output_file": tmp_path / "gone.mkv"},
                3: {"type": "file", "enable": False, "output_file": tmp_path / "off.mp4"},
                4: {"type": "fake", "enable": True},
                5: {
                    "type": "msgbroker",
                    "enable": True,
                    "msg_broker_proto_lib": "libnvds_redis_proto.so",
                    "msg_broker_conn_str": "localhost;6379",
                    "topic": "faces",
                },
            },
        }
    )
    assert output_lines(pipeline, tmp_path / "run") == [
        f"output [sink0]: {written}",
        "output [sink1]: rtsp://127.0.0.1:8600/ds-test (served while the run lasted)",
        f"output [sink2]: {tmp_path / 'gone.mkv'} (not written)",
        "output [sink5]: messages to localhost;6379, topic faces",
        f"settings and logs of every service: {tmp_path / 'run'}",
    ]


@pytest.mark.parametrize(
    ("found", "expected"),
    [(Found(frames=3), "objects found: none in the 3 frame(s)"), (None, None)],
    ids=["a detector that found nothing", "no detector"],
)
def test_the_summary_counts_objects_only_where_a_detector_ran(
    found: Found | None, expected: str | None
) -> None:
    from heron.run.runner import RunResult, _summary

    lines: list[str] = []
    _summary(RunResult(0, "done", found=found), lines.append)
    counted = [line for line in lines if line.startswith("objects found")]
    if expected is None:
        assert counted == []
    else:
        assert len(counted) == 1 and counted[0].startswith(expected)
