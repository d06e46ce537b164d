"""From the pipeline config to one `heron.v1.SourceSpec` per stream ingest opens.

deepstream-app numbers streams in the order of the enabled `[sourceN]` groups; a multi-URI source
(type 3) opens its URI `num-sources` times, each a stream of its own. `source-id` in a group pins
the first id of that group. The stream id is `source-<source_id>`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from heron.core.config.models import Pipeline, stream_id_for
from heron.core.config.sources import CameraSource, RtpProtocol, UriSourceBase
from heron.core.media_uri import MediaTarget, UriError, parse_uri
from heron.v1.stream_pb2 import RtspTransport, SourceSpec, SourceType

_TYPES = {
    "camera_v4l2": SourceType.SOURCE_TYPE_CAMERA_V4L2,
    "uri": SourceType.SOURCE_TYPE_URI,
    "multi_uri": SourceType.SOURCE_TYPE_MULTI_URI,
    "rtsp": SourceType.SOURCE_TYPE_RTSP,
}


class SourceConfigError(ValueError):
    """A source of the pipeline config that ingest cannot open, named by its group."""


@dataclass(frozen=True)
class PlannedSource:
    """What one stream worker needs: the spec, where the media is, and live-source limits."""

    spec: SourceSpec
    target: MediaTarget
    group: str  # the config group it came from, e.g. "source0", for error messages
    read_timeout_s: float | None  # None: use the service's default
    max_attempts: int  # reconnect tries before giving up; -1 = forever


def plan_sources(pipeline: Pipeline, *, check_exists: bool = True) -> list[PlannedSource]:
    """Every stream of every enabled source, in deepstream-app's order; bad URIs are errors."""
    planned: list[PlannedSource] = []
    problems: list[str] = []
    for index, source_ids in pipeline.source_ids():
        source = pipeline.sources[index]
        group = f"source{index}"
        try:
            target = parse_uri(_uri_of(source), check_exists=check_exists)
        except UriError as e:
            problems.append(f"[{group}] {e}")
            continue
        for source_id in source_ids:
            spec = _spec(source, source_id, pipeline.tests.file_loop and not target.live)
            planned.append(_planned(source, spec, target, group))
    ids = [p.spec.source_id for p in planned]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        problems.append(f"source ids {duplicates} are used by more than one stream (source-id=)")
    if problems:
        raise SourceConfigError("cannot open the pipeline's sources:\n  " + "\n  ".join(problems))
    return planned


def plan_source(spec: SourceSpec, group: str, *, check_exists: bool = True) -> PlannedSource:
    """One stream from its spec alone (a source added at run time); raises UriError. Its URI is
    checked as a config source's is; it has no reconnect limits of its own (retried forever,
    the service's stall timeout)."""
    target = parse_uri(spec.uri, check_exists=check_exists)
    return PlannedSource(spec, target, group, None, -1)


def _uri_of(source: object) -> str:
    if isinstance(source, CameraSource):
        return source.device
    if isinstance(source, UriSourceBase):
        return source.uri
    raise SourceConfigError(f"unsupported source model {type(source).__name__}")


def _spec(source: CameraSource | UriSourceBase, source_id: int, loop: bool) -> SourceSpec:
    spec = SourceSpec(
        stream_id=stream_id_for(source_id),
        source_id=source_id,
        type=_TYPES[str(getattr(source, "type", ""))],
        drop_frame_interval=source.drop_frame_interval,
        loop=loop,
    )
    if isinstance(source, CameraSource):
        spec.uri = source.device
        spec.width, spec.height = source.camera_width, source.camera_height
        spec.fps_n, spec.fps_d = source.camera_fps_n, source.camera_fps_d
    else:
        spec.uri = source.uri
        spec.latency_ms = source.latency
        spec.rtsp_transport = (
            RtspTransport.RTSP_TRANSPORT_TCP
            if source.select_rtp_protocol is RtpProtocol.TCP
            else RtspTransport.RTSP_TRANSPORT_UNSPECIFIED
        )
    return spec


def _planned(
    source: CameraSource | UriSourceBase, spec: SourceSpec, target: MediaTarget, group: str
) -> PlannedSource:
    timeout: float | None = None
    attempts = -1
    if isinstance(source, UriSourceBase):
        timeout = float(source.rtsp_reconnect_interval_sec) or None
        attempts = source.rtsp_reconnect_attempts
    return PlannedSource(spec, target, group, timeout, attempts)


def describe(planned: PlannedSource) -> str:
    """One line for logs: stream id, kind and where (file names shortened)."""
    where = planned.target.url
    if planned.target.kind.value == "file":
        where = os.path.basename(where)
    return f"{planned.spec.stream_id} ({planned.group}, {planned.target.kind.value}: {where})"
