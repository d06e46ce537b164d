"""`heron watch`, `heron status`, `heron detect`, `heron model`, `heron streams ...` and
`heron models ...`: the gRPC API from the command line (mounted by heron.cli.main).

Only typer and the standard library load here; grpc and the client load inside the commands so
`heron --help` stays fast. Exit codes: 0 done, 1 the server failed or refused the call (one
`error: ...` line), 2 a usage error (typer's message names the option).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from heron.core.cli_errors import fail
from heron.core.grpc.settings import GrpcServerSettings
from heron.core.options import field_default

if TYPE_CHECKING:
    from google.protobuf.timestamp_pb2 import Timestamp

    from heron.client import Client, Subscription
    from heron.v1 import control_pb2, detection_pb2, detector_pb2

# Where the control service (Pipeline, Detections) listens unless told otherwise: a gRPC
# server's default address. The inference service (Detector) listens on a port of its own,
# which `heron run` prints when the pipeline starts.
CONTROL_SERVER: str = field_default(GrpcServerSettings, "listen")
INFERENCE_SERVER = "127.0.0.1:50052"

app = typer.Typer(no_args_is_help=True)
streams_app = typer.Typer(no_args_is_help=True)
models_app = typer.Typer(no_args_is_help=True)


def _check_server(value: str) -> str:
    # The first code of every command to run (each has --server), so before grpc loads: gRPC's
    # C core logs a failed TLS handshake (and more) at INFO on stderr, which would bury the
    # command's one-line error. Only its errors, unless the user asked for more.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    from heron.client.target import check_target  # with the command, not --help

    try:
        return check_target(value)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


def _server_option(default: str, serves: str) -> Any:
    return typer.Option(
        "--server",
        help=f"HOST:PORT of the {serves} (default: {default}).",
        show_default=False,
        callback=_check_server,
    )


ControlServer = Annotated[str, _server_option(CONTROL_SERVER, "control service")]
InferenceServer = Annotated[
    str, _server_option(INFERENCE_SERVER, "inference service, as `heron run` prints it")
]
TlsCa = Annotated[
    Path | None,
    typer.Option(
        "--tls-ca",
        help="CA certificate that signed the server's: use TLS.",
        exists=True,
        dir_okay=False,
        readable=True,
    ),
]
TlsCert = Annotated[
    Path | None,
    typer.Option(
        "--tls-cert",
        help="Client certificate, for a mutual-TLS server.",
        exists=True,
        dir_okay=False,
        readable=True,
    ),
]
TlsKey = Annotated[
    Path | None,
    typer.Option(
        "--tls-key",
        help="The client certificate's key.",
        exists=True,
        dir_okay=False,
        readable=True,
    ),
]
Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="HERON_TOKEN",
        help="Bearer token, when the server requires one (default: $HERON_TOKEN).",
        show_default=False,
        show_envvar=False,
    ),
]
MinConfidence = Annotated[
    float,
    typer.Option(
        "--min-confidence",
        min=0.0,
        max=1.0,
        help="Only objects at least this confident, 0 to 1 (default: 0).",
        show_default=False,
    ),
]
AsJson = Annotated[
    bool,
    typer.Option("--json", help="Print JSON (the API's own field names).", show_default=False),
]


@dataclass(frozen=True)
class _Connection:
    """The options every command has."""

    server: str
    tls_ca: Path | None
    tls_cert: Path | None
    tls_key: Path | None
    token: str | None

    def client(self) -> Client:
        from heron.client import Client, ClientSettings, ClientTls

        if (self.tls_cert is None) != (self.tls_key is None):
            raise typer.BadParameter(
                "give both or neither: a client certificate needs its key",
                param_hint="'--tls-cert' / '--tls-key'",
            )
        tls = None
        if self.tls_ca is not None or self.tls_cert is not None:
            tls = ClientTls(ca_file=self.tls_ca, cert_file=self.tls_cert, key_file=self.tls_key)
        return Client(ClientSettings(target=self.server, tls=tls, token=self.token))


@contextmanager
def _calls(connection: _Connection) -> Iterator[Client]:
    """The client; a failed call ends the command with its one-line error and exit 1."""
    from heron.client import HeronClientError

    try:
        with connection.client() as client:
            yield client
    except HeronClientError as e:
        raise fail(str(e)) from None


def _err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _out(line: str) -> None:
    print(line, flush=True)


# -- watch -------------------------------------------------------------------------------


@app.command()
def watch(
    *,
    stream: Annotated[
        list[str] | None,
        typer.Option("--stream", help="Only this stream (repeat for several; default: all)."),
    ] = None,
    label: Annotated[
        list[str] | None,
        typer.Option("--class", help="Only objects of this label (repeat; default: all)."),
    ] = None,
    min_confidence: MinConfidence = 0.0,
    after: Annotated[
        str,
        typer.Option(
            "--after",
            help="Continue after this position (printed when watch stops; default: from now).",
            show_default=False,
        ),
    ] = "",
    limit: Annotated[
        int | None,
        typer.Option(min=1, help="Stop after this many frames (default: until Ctrl-C)."),
    ] = None,
    server: ControlServer = CONTROL_SERVER,
    tls_ca: TlsCa = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
    token: Token = None,
) -> None:
    """Live detections, one line per object: time, stream, frame, label, confidence, box
    (left,top,width,height in the frame's pixels) and track id. Ctrl-C stops it."""
    connection = _Connection(server, tls_ca, tls_cert, tls_key, token)
    with _calls(connection) as client:
        subscription = client.subscribe(
            stream_ids=stream or (),
            classes=label or (),
            min_confidence=min_confidence,
            after=after,
            on_reconnect=lambda why, delay: _err(
                f"warning: the subscription was cut ({why}); calling again in {delay:.1f} s"
            ),
        )
        try:
            _follow(subscription, limit)
        except KeyboardInterrupt:
            pass
        finally:
            subscription.cancel()
    where = subscription.position
    _err(f"stopped after position {where}; resume with --after {where}" if where else "stopped")


def _follow(subscription: Subscription, limit: int | None) -> None:
    """Print the events until `limit` frames; a failure says where to resume from."""
    from heron.client import HeronClientError

    frames = 0
    try:
        for event in subscription:
            if event.HasField("gap"):
                _err(_gap_line(event.gap))
                continue
            for line in _object_lines(event.frame):
                _out(line)
            frames += 1
            if limit is not None and frames >= limit:
                return
    except HeronClientError as e:
        if not subscription.position:
            raise
        raise fail(f"{e}; resume with --after {subscription.position}") from None


def _gap_line(gap: control_pb2.Gap) -> str:
    return (
        f"warning: gap: {gap.missed} frames left the server's retention window before they "
        f"could be sent (after {gap.after or '-'}, resumed at {gap.resumed_at or '-'})"
    )


def _object_lines(frame: detection_pb2.FrameMetadata) -> Iterator[str]:
    ref = frame.frame
    when = _time(ref.capture_time) if ref.HasField("capture_time") else "-"
    for obj in frame.objects:
        box = obj.bbox
        yield (
            f"{when} stream={ref.stream_id} frame={ref.frame_number} label={obj.label} "
            f"confidence={obj.confidence:.2f} "
            f"box={box.left:.0f},{box.top:.0f},{box.width:.0f},{box.height:.0f} "
            f"track={obj.tracker_id or '-'}"
        )


def _time(stamp: Timestamp) -> str:
    """A protobuf Timestamp as UTC ISO 8601 with milliseconds."""
    moment = stamp.ToDatetime()
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# -- status ------------------------------------------------------------------------------


@app.command()
def status(
    *,
    follow: Annotated[
        bool,
        typer.Option(
            "--watch", help="Print it again every --interval until Ctrl-C.", show_default=False
        ),
    ] = False,
    interval: Annotated[
        float,
        typer.Option(
            min=0.1, help="Seconds between statuses with --watch (default: 1).", show_default=False
        ),
    ] = 1.0,
    server: ControlServer = CONTROL_SERVER,
    tls_ca: TlsCa = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
    token: Token = None,
) -> None:
    """The pipeline's services (serving or not, the model each inference instance serves),
    sources and frame rates."""
    connection = _Connection(server, tls_ca, tls_cert, tls_key, token)
    with _calls(connection) as client:
        if not follow:
            _print_status(client.get_status())
            return
        try:
            for i, pipeline in enumerate(client.watch_status(interval_s=interval)):
                if i:
                    _out("")
                _print_status(pipeline)
        except KeyboardInterrupt:
            pass


def _print_status(pipeline: control_pb2.PipelineStatus) -> None:
    when = _time(pipeline.time) if pipeline.HasField("time") else "-"
    _out(f"pipeline {pipeline.pipeline or '-'} at {when}")
    _out("services:" if pipeline.services else "services: none")
    for service in pipeline.services:
        state = "serving" if service.serving else f"NOT SERVING ({service.detail or 'no detail'})"
        model = f" model={service.model_name}:{service.model_version}" if service.model_name else ""
        _out(f"  {service.name} {service.instance or '-'} {state}{model}")
    _out("sources:" if pipeline.sources else "sources: none")
    for source in pipeline.sources:
        _out(f"  {_source_line(source)}")
    if pipeline.rates:
        rates = " ".join(f"{r.stream_id}={r.fps:.1f}" for r in pipeline.rates)
        _out(f"fps out: {rates}")


def _source_line(source: control_pb2.SourceStatus) -> str:
    from heron.v1 import control_pb2

    state = control_pb2.SourceState.Name(source.state).removeprefix("SOURCE_STATE_").lower()
    line = (
        f"{source.source.stream_id} {state} fps={source.fps:.1f} frames={source.frames} "
        f"dropped={source.dropped} reconnects={source.reconnects} uri={source.source.uri}"
    )
    return f"{line} last_error={source.last_error!r}" if source.last_error else line


# -- streams -----------------------------------------------------------------------------


@streams_app.command("add")
def streams_add(
    uri: Annotated[str, typer.Argument(help="file://, rtsp://, http(s):// URI or /dev/videoN.")],
    *,
    name: Annotated[
        str | None,
        typer.Option(
            "--name", help="Stream id (default: the next free source-N).", show_default=False
        ),
    ] = None,
    loop: Annotated[
        bool, typer.Option("--loop", help="Restart a file at its end.", show_default=False)
    ] = False,
    server: ControlServer = CONTROL_SERVER,
    tls_ca: TlsCa = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
    token: Token = None,
) -> None:
    """Add a source to the running pipeline (no restart)."""
    from heron.v1 import stream_pb2

    if not uri.strip():
        raise typer.BadParameter("expected a URI, got an empty one", param_hint="'URI'")
    from heron.core.media_uri import UriError, parse_uri

    try:  # the scheme and form here; whether the file or camera exists, on the server
        parse_uri(uri, check_exists=False)
    except UriError as e:
        raise typer.BadParameter(str(e), param_hint="'URI'") from None
    if name is not None and not name.strip():
        raise typer.BadParameter("expected a stream id, got an empty one", param_hint="'--name'")
    connection = _Connection(server, tls_ca, tls_cert, tls_key, token)
    with _calls(connection) as client:
        added = client.add_source(stream_pb2.SourceSpec(uri=uri, loop=loop), stream_id=name or "")
    _out(f"added {_source_line(added)}")


@streams_app.command("ls")
def streams_ls(
    *,
    server: ControlServer = CONTROL_SERVER,
    tls_ca: TlsCa = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
    token: Token = None,
) -> None:
    """The pipeline's sources: state, fps, frames, drops, reconnects, last error."""
    connection = _Connection(server, tls_ca, tls_cert, tls_key, token)
    with _calls(connection) as client:
        sources = client.list_sources()
    for source in sources:
        _out(_source_line(source))
    if not sources:
        _err("no sources")


@streams_app.command("rm")
def streams_rm(
    stream_id: Annotated[str, typer.Argument(metavar="ID", help="The stream id to remove.")],
    *,
    server: ControlServer = CONTROL_SERVER,
    tls_ca: TlsCa = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
    token: Token = None,
) -> None:
    """Remove a source: its frames in flight are flushed, the other streams go on."""
    if not stream_id.strip():
        raise typer.BadParameter("expected a stream id, got an empty one", param_hint="'ID'")
    connection = _Connection(server, tls_ca, tls_cert, tls_key, token)
    with _calls(connection) as client:
        removed = client.remove_source(stream_id)
    _out(f"removed {stream_id} after {removed.frames} frames")


# -- detect, model -----------------------------------------------------------------------


@app.command()
def detect(
    images: Annotated[
        list[Path],
        typer.Argument(
            metavar="IMAGE...",
            help="JPEG or PNG files, sent in one request.",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
    *,
    min_confidence: MinConfidence = 0.0,
    as_json: AsJson = False,
    server: InferenceServer = INFERENCE_SERVER,
    tls_ca: TlsCa = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
    token: Token = None,
) -> None:
    """Objects in images, from the inference service's Detector."""
    connection = _Connection(server, tls_ca, tls_cert, tls_key, token)
    from heron.client import ImageError
    from heron.client.images import to_images

    try:
        messages = to_images(images)
    except ImageError as e:
        raise typer.BadParameter(str(e), param_hint="'IMAGE...'") from None
    with _calls(connection) as client:
        response = client.detect(messages, min_confidence=min_confidence)
    if as_json:
        _out(json.dumps(_as_dict(response), indent=2))
        return
    _print_detections(response)


def _print_detections(response: detector_pb2.DetectResponse) -> None:
    _out(f"model {response.model_name}:{response.model_version}")
    for result in response.results:
        _out(f"{result.id}: {len(result.objects)} objects in {result.width}x{result.height}")
        for obj in result.objects:
            box = obj.bbox
            _out(
                f"  label={obj.label} confidence={obj.confidence:.2f} "
                f"box={box.left:.0f},{box.top:.0f},{box.width:.0f},{box.height:.0f}"
            )


@app.command()
def model(
    *,
    as_json: AsJson = False,
    server: InferenceServer = INFERENCE_SERVER,
    tls_ca: TlsCa = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
    token: Token = None,
) -> None:
    """The model the inference service serves: name, version, precision, input, labels."""
    connection = _Connection(server, tls_ca, tls_cert, tls_key, token)
    with _calls(connection) as client:
        info = client.get_model()
    if as_json:
        _out(json.dumps(_as_dict(info), indent=2))
        return
    _out(f"model {info.name}:{info.version} ({info.precision}, {info.backend})")
    _out(
        f"input {info.input_channels}x{info.input_height}x{info.input_width} "
        f"(CxHxW), max batch {info.max_batch_size}"
    )
    _out(f"labels {', '.join(info.labels) or '-'}")


def _as_dict(message: Any) -> dict[str, Any]:
    """The message in protobuf's JSON mapping (what grpcurl prints), zeros included."""
    from google.protobuf.json_format import MessageToDict

    return MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


# -- models ------------------------------------------------------------------------------


@models_app.command("get")
def models_get(
    *,
    as_json: AsJson = False,
    server: ControlServer = CONTROL_SERVER,
    tls_ca: TlsCa = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
    token: Token = None,
) -> None:
    """Which version of the model each stream runs, and the versions loaded."""
    connection = _Connection(server, tls_ca, tls_cert, tls_key, token)
    with _calls(connection) as client:
        versions = client.get_model_versions()
    _print_versions(versions, as_json)


@models_app.command("set")
def models_set(
    *,
    default: Annotated[
        str,
        typer.Option(
            "--default",
            help="The version every stream not given with --stream runs (default: the "
            "config's model).",
            show_default=False,
        ),
    ] = "",
    stream: Annotated[
        list[str] | None,
        typer.Option(
            "--stream",
            metavar="ID=VERSION",
            help="A stream that runs another version than the default, e.g. source-0=2 "
            "(repeat for several).",
        ),
    ] = None,
    requested_by: Annotated[
        str,
        typer.Option(
            "--requested-by",
            help="Who asks, for the logs and the stored record.",
            show_default=False,
        ),
    ] = "",
    timeout: Annotated[
        float,
        typer.Option(min=1.0, help="Seconds to wait for every inference instance to load them."),
    ] = 120.0,
    as_json: AsJson = False,
    server: ControlServer = CONTROL_SERVER,
    tls_ca: TlsCa = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
    token: Token = None,
) -> None:
    """Route streams to versions of the model: a canary, a promotion, a rollback.

    The versions are loaded beside the serving one, then every stream switches between
    batches. It replaces the routing in force: streams not given run the default."""
    streams = _stream_versions(stream or [])
    connection = _Connection(server, tls_ca, tls_cert, tls_key, token)
    with _calls(connection) as client:
        versions = client.set_model_versions(
            default_version=default,
            stream_versions=streams,
            requested_by=requested_by or "heron models set",
            deadline_s=timeout,
        )
    _print_versions(versions, as_json)


def _stream_versions(given: list[str]) -> dict[str, str]:
    """`ID=VERSION` options as a mapping; a usage error names the one that is malformed."""
    found: dict[str, str] = {}
    for item in given:
        stream_id, sep, version = item.partition("=")
        stream_id, version = stream_id.strip(), version.strip()
        if not sep or not stream_id or not version:
            raise typer.BadParameter(
                f"expected ID=VERSION (a stream id, '=', a version, e.g. source-0=2), got {item!r}",
                param_hint="'--stream'",
            )
        if stream_id in found:
            raise typer.BadParameter(
                f"stream {stream_id!r} is given twice ({found[stream_id]} and {version})",
                param_hint="'--stream'",
            )
        found[stream_id] = version
    return found


def _print_versions(versions: control_pb2.ModelVersions, as_json: bool) -> None:
    if as_json:
        _out(json.dumps(_as_dict(versions), indent=2))
        return
    default = versions.default_version or versions.config_version
    _out(f"model {versions.model_name or '-'}: config version {versions.config_version or '-'}")
    _out(f"default {default or '-'}")
    for stream_id, version in sorted(versions.stream_versions.items()):
        _out(f"  {stream_id}={version}")
    _out(f"loaded {', '.join(versions.loaded) or '-'}")
    if versions.requested_by or versions.HasField("time"):
        when = _time(versions.time) if versions.HasField("time") else "-"
        _out(f"set by {versions.requested_by or '-'} at {when}")
