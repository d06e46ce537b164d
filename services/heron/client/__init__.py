"""Heron's gRPC client: `Client` (blocking) and `AsyncClient` (asyncio) for the control
service (Pipeline, Detections) and the inference service (Detector). See docs/grpc.md.

    from heron.client import Client

    with Client("127.0.0.1:50051") as client:
        for event in client.subscribe(classes=["Mask"]):
            ...

Failed calls raise a `HeronClientError` subclass (heron.client.errors).
"""

from __future__ import annotations

from heron.client.aio import AsyncClient, AsyncSubscription
from heron.client.errors import (
    AlreadyExistsError,
    DeadlineExceededError,
    HeronClientError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    ServerError,
    ServerUnavailableError,
    UnauthenticatedError,
    UnimplementedError,
)
from heron.client.images import ImageError, ImageInput
from heron.client.settings import TOKEN_ENV, ClientSettings
from heron.client.sync import Client, ReconnectHook, Subscription
from heron.core.grpc.channel import ClientTls

__all__ = [
    "TOKEN_ENV",
    "AlreadyExistsError",
    "AsyncClient",
    "AsyncSubscription",
    "Client",
    "ClientSettings",
    "ClientTls",
    "DeadlineExceededError",
    "HeronClientError",
    "ImageError",
    "ImageInput",
    "InvalidRequestError",
    "NotFoundError",
    "PermissionDeniedError",
    "ReconnectHook",
    "ResourceExhaustedError",
    "ServerError",
    "ServerUnavailableError",
    "Subscription",
    "UnauthenticatedError",
    "UnimplementedError",
]
