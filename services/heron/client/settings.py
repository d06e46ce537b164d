"""How a client connects: address, TLS, token, deadline and message size, checked once."""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from heron.client.target import check_target
from heron.core.grpc.channel import ClientTls

TOKEN_ENV = "HERON_TOKEN"


class ClientSettings(BaseModel):
    """What a `Client` or `AsyncClient` dials and how."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    target: str = Field(description="The server's HOST:PORT (or unix:PATH).")
    tls: ClientTls | None = Field(
        default=None, description="TLS: the CA that signed the server, a client cert for mTLS."
    )
    token: SecretStr | None = Field(
        default=None,
        validate_default=True,  # so an unset token is looked up in the environment
        description=f"Bearer token sent with every call (unset: ${TOKEN_ENV}).",
    )
    deadline_s: float | None = Field(
        default=10.0, gt=0, description="Deadline of each unary call; None: wait for ever."
    )
    max_message_mb: float = Field(
        default=16.0, gt=0, description="Largest message sent or received, in MiB."
    )
    reconnect_timeout_s: float = Field(
        default=30.0,
        ge=0,
        description="A subscription whose connection dropped calls again for this long.",
    )

    @field_validator("target")
    @classmethod
    def _target_is_host_port(cls, target: str) -> str:
        return check_target(target)

    @field_validator("token", mode="before")
    @classmethod
    def _token_from_env(cls, token: object) -> object:
        if token is None or token == "":
            return os.environ.get(TOKEN_ENV) or None
        return token

    def token_value(self) -> str | None:
        return self.token.get_secret_value() if self.token is not None else None
