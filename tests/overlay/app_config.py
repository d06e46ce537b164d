"""deepstream-app configs for overlay tests, written into a test's tmp_path."""

from __future__ import annotations

from pathlib import Path

from heron.core.config.models import Pipeline
from heron.core.config.pipeline_file import load_pipeline

REPO = Path(__file__).resolve().parents[2]
NVINFER = REPO / "tests" / "fixtures" / "deepstream" / "config_infer_primary_facemask.txt"

BASE = f"""
[source0]
enable=1
type=2
uri=file:///nonexistent-a.mp4

[source1]
enable=1
type=2
uri=file:///nonexistent-b.mp4

[streammux]
width=320
height=240

[primary-gie]
enable=1
bbox-border-color0=0;1;0;1
bbox-border-color1=1;0;0;1
config-file={NVINFER}

[osd]
enable=1
border-width=3
text-size=12
"""


def write_app(tmp_path: Path, body: str, *, name: str = "app.txt") -> Path:
    """BASE (two sources, 320x240 muxer, green Mask / red No-Mask) plus `body`."""
    path = tmp_path / name
    path.write_text(BASE + body, encoding="utf-8")
    return path


def load_app(tmp_path: Path, body: str) -> Pipeline:
    return load_pipeline(write_app(tmp_path, body))[0]
