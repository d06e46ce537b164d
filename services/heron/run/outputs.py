"""What `heron run` tells at the end: where its results went and what the detector found.

deepstream-app leaves a user to find the MP4 a sink wrote from the config; a run here names
each output once it is over (a file a sink should have written and did not is said so), the
folder with every service's settings and log, and how many objects left the last stage — or
that none did, which a run whose frames all arrived would otherwise hide.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from heron.core.config.models import Pipeline
from heron.core.config.sinks import FileSink, MsgBrokerSink, RtspSink

RTSP_MOUNT = "/ds-test"  # deepstream-app's, and the overlay's default


@dataclass(frozen=True)
class Found:
    """Objects that left the last stage: by label, the frames that had any, distinct tracks."""

    objects: Mapping[str, int] = field(default_factory=dict)
    frames_with_objects: int = 0
    frames: int = 0
    tracks: int = 0

    def line(self) -> str:
        if not self.frames:
            return "objects found: none (no frame left the last stage)"
        total = sum(self.objects.values())
        if not total:
            return (
                f"objects found: none in the {self.frames} frame(s): the detector found "
                "nothing above its thresholds (pre-cluster-threshold of the nvinfer config)"
            )
        labels = ", ".join(f"{label} {n}" for label, n in sorted(self.objects.items()))
        tracks = f"; {self.tracks} track(s)" if self.tracks else ""
        return (
            f"objects found: {total} ({labels}) in {self.frames_with_objects} of "
            f"{self.frames} frame(s){tracks}"
        )


def output_lines(pipeline: Pipeline, run_dir: Path, rtsp_host: str = "127.0.0.1") -> list[str]:
    """One line per enabled sink that leaves something, then the run folder."""
    lines = []
    for n, sink in sorted(pipeline.sinks.items()):
        if not sink.enable:
            continue
        name = f"[sink{n}]"
        if isinstance(sink, FileSink):
            path = sink.output_file
            written = "" if path.is_file() else " (not written)"
            lines.append(f"output {name}: {path}{written}")
        elif isinstance(sink, RtspSink):
            url = f"rtsp://{rtsp_host}:{sink.rtsp_port}{RTSP_MOUNT}"
            lines.append(f"output {name}: {url} (served while the run lasted)")
        elif isinstance(sink, MsgBrokerSink):
            where = sink.msg_broker_conn_str or sink.msg_broker_config or "the broker"
            topic = f", topic {sink.topic}" if sink.topic else ""
            lines.append(f"output {name}: messages to {where}{topic}")
    lines.append(f"settings and logs of every service: {run_dir}")
    return lines
