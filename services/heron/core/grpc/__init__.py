"""The gRPC kit every Heron server and client uses (see docs/grpc.md): settings, the errors a
servicer raises, `start_server` (health, reflection, TLS/mTLS, bearer token, size limits, error
mapping) and `open_channel` for clients.

The settings and errors import without grpcio (a plan holds the settings wherever it is made);
the server and channel load grpcio when first named.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from heron.core.grpc.errors import InvalidArgumentError, NotFoundError, UnavailableError
from heron.core.grpc.settings import GrpcServerSettings, TlsSettings

if TYPE_CHECKING:
    from heron.core.grpc.channel import ClientTls, open_aio_channel, open_channel
    from heron.core.grpc.server import RunningServer, ServiceBinding, start_server

_LAZY = {
    "ClientTls": "channel",
    "open_aio_channel": "channel",
    "open_channel": "channel",
    "RunningServer": "server",
    "ServiceBinding": "server",
    "start_server": "server",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "ClientTls",
    "GrpcServerSettings",
    "InvalidArgumentError",
    "NotFoundError",
    "RunningServer",
    "ServiceBinding",
    "TlsSettings",
    "UnavailableError",
    "open_aio_channel",
    "open_channel",
    "start_server",
]
