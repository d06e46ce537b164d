"""Start a gRPC server with what every Heron server has: health, reflection, TLS or mutual
TLS, the bearer token, message size limits and the error mapping (see docs/grpc.md).

    running = start_server(settings.grpc, [ServiceBinding("heron.v1.Detections", add)])
    running.set_serving("heron.v1.Detections", redis_answers)
    running.stop()
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from heron.core.grpc.interceptor import KitInterceptor
from heron.core.grpc.reflection import enable_reflection
from heron.core.grpc.settings import GrpcServerSettings, TlsSettings, message_bytes, split_listen

log = logging.getLogger(__name__)

HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass(frozen=True)
class ServiceBinding:
    """One service a server offers: its full name (for health and reflection) and how to add
    its servicer, e.g. `lambda s: add_DetectorServicer_to_server(servicer, s)`."""

    name: str
    add_to_server: Callable[[grpc.Server], None]


class RunningServer:
    """A started server: its bound port, per-service health, and a graceful stop."""

    def __init__(
        self, server: grpc.Server, port: int, health: health.HealthServicer, grace_s: float
    ) -> None:
        self.port = port
        self._server = server
        self._health = health
        self._grace_s = grace_s
        self._stopped = False

    def set_serving(self, service: str, serving: bool) -> None:
        """The grpc.health.v1 status of `service` ("" = the server as a whole)."""
        self._health.set(service, SERVING if serving else NOT_SERVING)

    def stop(self) -> None:
        """Health says NOT_SERVING at once; calls in flight get `grace_s`, then are cancelled."""
        if self._stopped:
            return
        self._stopped = True
        self._health.enter_graceful_shutdown()
        self._server.stop(self._grace_s).wait()


def start_server(
    settings: GrpcServerSettings, bindings: Sequence[ServiceBinding], *, max_workers: int = 16
) -> RunningServer:
    """Serve `bindings` plus health and reflection on `settings.listen`.

    Raises OSError when the address cannot be bound and FileNotFoundError/ValueError (naming
    the setting) when a TLS file is missing or unreadable. A streaming call holds one of the
    `max_workers` threads while it lasts: size it for the streams you expect.
    """
    limits = [
        ("grpc.max_receive_message_length", message_bytes(settings.max_receive_message_mb)),
        ("grpc.max_send_message_length", message_bytes(settings.max_send_message_mb)),
        ("grpc.so_reuseport", 0),  # a second server on a taken port must fail, not share it
    ]
    token = settings.token.get_secret_value() if settings.token is not None else None
    server = grpc.server(
        ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"),
        interceptors=[KitInterceptor(token)],
        options=limits,
    )
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for binding in bindings:
        binding.add_to_server(server)
    names = [b.name for b in bindings]
    enable_reflection([*names, HEALTH_SERVICE], server)
    port = _bind(server, settings)
    for name in ["", *names]:
        health_servicer.set(name, SERVING)
    server.start()
    security = "plaintext" if settings.tls is None else _tls_kind(settings.tls)
    host, _ = split_listen(settings.listen)
    log.info(
        "gRPC listening on %s:%d (%s%s): %s",
        host,
        port,
        security,
        ", bearer token" if token is not None else "",
        ", ".join(names),
    )
    return RunningServer(server, port, health_servicer, settings.grace_s)


def _bind(server: grpc.Server, settings: GrpcServerSettings) -> int:
    try:
        if settings.tls is None:
            port = server.add_insecure_port(settings.listen)
        else:
            port = server.add_secure_port(settings.listen, _credentials(settings.tls))
    except RuntimeError as e:  # grpcio raises this when the bind fails
        raise OSError(f"cannot listen on {settings.listen}: {e}") from None
    if port == 0:  # older grpcio: 0 instead of an exception
        raise OSError(f"cannot listen on {settings.listen}: the address is taken or invalid")
    return int(port)


def _credentials(tls: TlsSettings) -> grpc.ServerCredentials:
    cert = read_pem(tls.cert_file, "tls.cert_file")
    key = read_pem(tls.key_file, "tls.key_file")
    ca = read_pem(tls.client_ca_file, "tls.client_ca_file") if tls.client_ca_file else None
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=ca is not None
    )


def read_pem(path: Path, setting: str) -> bytes:
    """A PEM file's bytes; the error names the setting that named it."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise FileNotFoundError(f"{setting}: cannot read {path}: {e.strerror}") from None
    if b"-----BEGIN " not in data:
        raise ValueError(f"{setting}: {path} is not PEM (no '-----BEGIN' line)")
    return data


def _tls_kind(tls: TlsSettings) -> str:
    return "mutual TLS" if tls.client_ca_file is not None else "TLS"
