"""Settings of a gRPC server: where it listens, message size limits, TLS and the bearer token.

A service's settings hold one `GrpcServerSettings` (e.g. `grpc:` in the control service's file,
`HERON_GRPC__LISTEN=0.0.0.0:50051` in its environment); `start_server` applies every field.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


def split_listen(value: str) -> tuple[str, int]:
    """`host:port` (IPv6 as `[::1]:50051`) as (host, port); ValueError saying what is wrong."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"expected HOST:PORT (as in 127.0.0.1:50051 or [::]:50051), got {value!r}")
    number = int(port)
    if number > 65535:
        raise ValueError(f"port {number} is out of range 0-65535 in {value!r}")
    if host.startswith("[") != host.endswith("]"):
        raise ValueError(f"unbalanced brackets around the IPv6 host in {value!r}")
    return host, number


class TlsSettings(BaseModel):
    """The server's certificate and key (PEM); with `client_ca_file`, mutual TLS."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cert_file: Path = Field(description="Server certificate chain, PEM.")
    key_file: Path = Field(description="Server private key, PEM.")
    client_ca_file: Path | None = Field(
        None,
        description="Set: mutual TLS, every client must present a certificate this CA signed.",
    )


class GrpcServerSettings(BaseModel):
    """One gRPC server: address, limits, transport security and call credentials."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    listen: str = Field(
        "127.0.0.1:50051",
        description="HOST:PORT to listen on; port 0 = a free port (the server reports it).",
    )
    max_receive_message_mb: float = Field(
        16.0, gt=0, le=2047, description="Largest request message, MiB (gRPC's default is 4)."
    )
    max_send_message_mb: float = Field(16.0, gt=0, le=2047, description="Largest reply, MiB.")
    tls: TlsSettings | None = Field(None, description="None = plaintext (loopback, dev).")
    token: SecretStr | None = Field(
        None,
        description="Set: every call but the health check needs 'authorization: Bearer <token>'.",
    )
    grace_s: float = Field(5.0, ge=0, description="At stop, how long in-flight calls may finish.")

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        split_listen(value)
        return value

    @field_validator("token")
    @classmethod
    def _usable_token(cls, token: SecretStr | None) -> SecretStr | None:
        if token is None:
            return None
        raw = token.get_secret_value()
        # gRPC metadata values are printable ASCII; the value itself is never shown.
        if not raw or not raw.isascii() or not raw.isprintable() or raw != raw.strip():
            raise ValueError(
                "expected printable ASCII without surrounding spaces (the token is not shown)"
            )
        return token


MIB = 1024 * 1024


def message_bytes(mb: float) -> int:
    return int(mb * MIB)
