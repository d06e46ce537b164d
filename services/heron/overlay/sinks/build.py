"""The enabled [sinkN] groups of a pipeline as overlay sinks, with clear errors for groups the
overlay cannot run (each names the group, the key, what was expected and what came)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from heron.core.config.models import Pipeline
from heron.core.config.sinks import (
    EglSink,
    FakeSink,
    FileSink,
    MsgBrokerSink,
    RtspSink,
)
from heron.overlay.sinks.base import Sink, SinkConfigError
from heron.overlay.sinks.fake import FakeSink as DiscardingSink
from heron.overlay.sinks.file import FileVideoSink
from heron.overlay.sinks.rtsp_metrics import RtspMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SinkOptions:
    """What the sinks need that [sinkN] does not say."""

    fps: float = 30.0
    size: tuple[int, int] | None = None  # output frame size when known up front (the tiler's)
    preset: str = "veryfast"
    rtsp_address: str = "127.0.0.1"
    rtsp_metrics: RtspMetrics | None = None
    resume: bool = False  # a restarted overlay: file sinks continue their recording


@dataclass(frozen=True)
class BoundSink:
    sink: Sink
    pixels: bool  # takes frames (video sinks) or only metadata (message broker)
    source_id: int | None  # link-to-demux: only this source's frames, untiled


def build_sinks(pipeline: Pipeline, options: SinkOptions) -> list[BoundSink]:
    """Sinks of every enabled [sinkN], in N order. A failure closes those already made."""
    built: list[BoundSink] = []
    try:
        for index, config in sorted(pipeline.sinks.items()):
            if config.enable:
                built.append(_build(f"sink{index}", config, pipeline, options))
    except BaseException:
        for b in built:
            b.sink.close()
        raise
    if not built:
        raise SinkConfigError("[sinkN]: expected at least one enabled sink (enable=1), got none")
    return built


def _build(
    name: str,
    config: FakeSink | EglSink | FileSink | RtspSink | MsgBrokerSink,
    pipeline: Pipeline,
    options: SinkOptions,
) -> BoundSink:
    demux = config.source_id if config.link_to_demux else None
    if isinstance(config, FakeSink | EglSink):
        if isinstance(config, EglSink):
            log.warning("[%s] type=2 (EGL window): the overlay has no display; discarding", name)
        return BoundSink(DiscardingSink(name), True, demux)
    if isinstance(config, FileSink):
        sink = FileVideoSink.from_sink(
            name, config, fps=options.fps, preset=options.preset, resume=options.resume
        )
        return BoundSink(sink, True, demux)
    if isinstance(config, RtspSink):
        from heron.overlay.sinks.video_server import RtspVideoSink

        size = options.size if demux is None else None
        server = RtspVideoSink(
            name, config, fps=options.fps, address=options.rtsp_address, size=size,
            metrics=options.rtsp_metrics,
        )  # fmt: skip
        return BoundSink(server, True, demux)
    from heron.overlay.sinks.broker import BrokerSink

    return BoundSink(BrokerSink.from_sink(name, config, pipeline.message_broker), False, demux)
