"""The client side: a channel to a Heron gRPC server with TLS, the bearer token and the same
message size limits as the server (see docs/grpc.md).

    with open_channel("127.0.0.1:50051", token=os.environ["HERON_TOKEN"]) as channel:
        stub = DetectionsStub(channel)
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
from pydantic import BaseModel, ConfigDict, Field, model_validator

from heron.core.grpc.server import read_pem
from heron.core.grpc.settings import message_bytes


class ClientTls(BaseModel):
    """TLS to the server: whom to trust, and (mutual TLS) the client's own certificate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ca_file: Path | None = Field(None, description="CA that signed the server; None = system's.")
    cert_file: Path | None = Field(None, description="Client certificate, PEM (mutual TLS).")
    key_file: Path | None = Field(None, description="Client private key, PEM (mutual TLS).")
    server_name: str | None = Field(
        None,
        min_length=1,
        description="The name the server's certificate must carry, when it is not the target's "
        "host (dialling a Service's cluster IP, checking its DNS name).",
    )

    @model_validator(mode="after")
    def _pair(self) -> ClientTls:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together: give both or neither")
        return self

    def credentials(self) -> grpc.ChannelCredentials:
        def pem(path: Path | None, what: str) -> bytes | None:
            return None if path is None else read_pem(path, what)

        return grpc.ssl_channel_credentials(
            root_certificates=pem(self.ca_file, "ca_file"),
            private_key=pem(self.key_file, "key_file"),
            certificate_chain=pem(self.cert_file, "cert_file"),
        )


def _options(max_message_mb: float, tls: ClientTls | None = None) -> list[tuple[str, int | str]]:
    size = message_bytes(max_message_mb)
    options: list[tuple[str, int | str]] = [
        ("grpc.max_receive_message_length", size),
        ("grpc.max_send_message_length", size),
    ]
    if tls is not None and tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    return options


def _with_token(metadata: Sequence[tuple[str, str | bytes]] | None, token: str) -> list[Any]:
    return [*(metadata or ()), ("authorization", f"Bearer {token}")]


class _Token(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[misc]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[misc]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[misc]
    grpc.StreamStreamClientInterceptor,  # type: ignore[misc]
):
    """Adds the bearer token to every call. An interceptor rather than call credentials,
    which gRPC sends only over TLS: a plaintext loopback server may want a token too."""

    def __init__(self, token: str) -> None:
        self._token = token

    def _details(self, details: Any) -> Any:
        return _CallDetails(
            details.method,
            details.timeout,
            _with_token(details.metadata, self._token),
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(
        self, continuation: Callable[..., Any], details: Any, requests: Any
    ) -> Any:
        return continuation(self._details(details), requests)

    def intercept_stream_stream(
        self, continuation: Callable[..., Any], details: Any, requests: Any
    ) -> Any:
        return continuation(self._details(details), requests)


class _CallDetails(
    namedtuple(
        "_CallDetails",
        ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression"),
    ),
    grpc.ClientCallDetails,  # type: ignore[misc]
):
    pass


def open_channel(
    target: str,
    *,
    tls: ClientTls | None = None,
    token: str | None = None,
    max_message_mb: float = 16.0,
) -> grpc.Channel:
    """A channel to `target` (host:port): plaintext unless `tls` is given."""
    options = _options(max_message_mb, tls)
    if tls is None:
        channel = grpc.insecure_channel(target, options=options)
    else:
        channel = grpc.secure_channel(target, tls.credentials(), options=options)
    return channel if token is None else grpc.intercept_channel(channel, _Token(token))


class _AioToken:
    """Adds the bearer token. grpc.aio files an interceptor under the first call type it
    matches only, so each call type gets an object of its own (the subclasses below)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        return grpc.aio.ClientCallDetails(
            details.method,
            details.timeout,
            grpc.aio.Metadata(*_with_token(list(details.metadata or ()), self._token)),
            details.credentials,
            details.wait_for_ready,
        )


class _AioUnaryUnaryToken(_AioToken, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _AioUnaryStreamToken(_AioToken, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _AioStreamUnaryToken(_AioToken, grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(self._details(details), requests)


class _AioStreamStreamToken(_AioToken, grpc.aio.StreamStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(self._details(details), requests)


_AIO_TOKENS = (
    _AioUnaryUnaryToken,
    _AioUnaryStreamToken,
    _AioStreamUnaryToken,
    _AioStreamStreamToken,
)


def open_aio_channel(
    target: str,
    *,
    tls: ClientTls | None = None,
    token: str | None = None,
    max_message_mb: float = 16.0,
) -> grpc.aio.Channel:
    """`open_channel` for asyncio: call it inside the event loop that will use it."""
    options = _options(max_message_mb, tls)
    interceptors = None if token is None else [kind(token) for kind in _AIO_TOKENS]
    if tls is None:
        return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)
    return grpc.aio.secure_channel(
        target, tls.credentials(), options=options, interceptors=interceptors
    )
