"""Pipeline configs for the planner's tests: one source, a fake sink, an nvinfer config."""

from __future__ import annotations

from pathlib import Path

FILE_SOURCE = "{type: uri, enable: true, uri: 'CLIP'}"
LIVE_SOURCE = "{type: uri, enable: true, uri: 'lavfi://testsrc2=size=64x64:rate=5,realtime'}"
TRACKER = "tracker: {enable: true, ll_lib_file: /opt/libnvds_mot_iou.so}\n"
OSD = "osd: {enable: true}\n"


def write_pipeline(folder: Path, source: str = FILE_SOURCE, *, extra: str = "") -> Path:
    """pipeline.yaml in `folder`; CLIP in `source` becomes a clip file's URI (not decoded)."""
    clip = folder / "clip.mp4"
    clip.write_bytes(b"not decoded by the planner")
    (folder / "model.onnx").write_bytes(b"")
    (folder / "labels.txt").write_text("Mask\nNo-Mask\n")
    (folder / "nvinfer.txt").write_text(
        "[property]\nonnx-file=model.onnx\nlabelfile-path=labels.txt\nnum-detected-classes=2\n"
    )
    path = folder / "pipeline.yaml"
    path.write_text(
        f"sources:\n  0: {source.replace('CLIP', clip.as_uri())}\n"
        "sinks:\n  0: {type: fake, enable: true}\n"
        "primary_gie: {enable: true, config_file: nvinfer.txt}\n" + extra
    )
    return path
