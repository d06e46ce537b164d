"""What a failed call raises: one exception type per kind of failure, with a message a person
can act on (where the server is, what to check), never a raw gRPC status.

Every class derives from `HeronClientError`, which keeps the gRPC status name (`code`) and the
server's own words (`details`). Some also derive from the builtin a caller would expect
(`ValueError` for a refused request, `LookupError` for an unknown id, `TimeoutError` for a
missed deadline), so code written against those keeps working.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc


class HeronClientError(Exception):
    """A call to a Heron gRPC server failed."""

    def __init__(self, message: str, *, code: str = "", details: str = "") -> None:
        super().__init__(message)
        self.code = code  # the gRPC status name, e.g. "UNAVAILABLE"; "" for client-side errors
        self.details = details  # the status details as the server (or gRPC) wrote them


class ServerUnavailableError(HeronClientError):
    """The server cannot be reached, or says it cannot serve now (UNAVAILABLE)."""


class UnauthenticatedError(HeronClientError):
    """The bearer token is missing or wrong (UNAUTHENTICATED)."""


class PermissionDeniedError(HeronClientError):
    """The server knows the caller and refuses the call (PERMISSION_DENIED)."""


class InvalidRequestError(HeronClientError, ValueError):
    """The server refused a field of the request (INVALID_ARGUMENT, OUT_OF_RANGE)."""

    @property
    def field(self) -> str:
        """The field the server named ("field: problem"), or "" when it named none."""
        name, sep, _ = self.details.partition(": ")
        return name if sep and " " not in name else ""


class NotFoundError(HeronClientError, LookupError):
    """An id the server does not know (NOT_FOUND)."""


class AlreadyExistsError(HeronClientError):
    """The id is taken (ALREADY_EXISTS)."""


class DeadlineExceededError(HeronClientError, TimeoutError):
    """No answer within the call's deadline (DEADLINE_EXCEEDED)."""


class ResourceExhaustedError(HeronClientError):
    """A message over the size limit, or a server out of capacity (RESOURCE_EXHAUSTED)."""


class UnimplementedError(HeronClientError):
    """The server at that address does not serve the method (UNIMPLEMENTED)."""


class ServerError(HeronClientError):
    """The server failed (INTERNAL, UNKNOWN and every other status)."""


@dataclass(frozen=True)
class CallContext:
    """What the message of a failed call needs to know about the call."""

    target: str
    method: str  # e.g. "heron.v1.Detector/Detect"
    token_sent: bool
    deadline_s: float | None = None


# Words gRPC itself writes when the connection (not the server's code) failed: a refused or
# dropped connection, a failed name lookup, a failed TLS handshake.
_TRANSPORT_WORDS = (
    "failed to connect",
    "connections to all backends failing",
    "connection refused",
    "connection reset",
    "socket closed",
    "broken pipe",
    "dns resolution failed",
    "errors resolving",
    "handshake",
    "ssl",
    "goaway",
    "endpoint read failed",
    "endpoint closing",
)
_TLS_WORDS = ("ssl", "tls", "handshake", "certificate")


def from_rpc_error(error: grpc.RpcError, call: CallContext) -> HeronClientError:
    """The typed error, with its message, for a failed call (sync or asyncio)."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = (error.details() if hasattr(error, "details") else None) or ""
    name = code.name if isinstance(code, grpc.StatusCode) else str(code)
    kind, message = _describe(code, details, call)
    return kind(message, code=name, details=details)


def _describe(
    code: grpc.StatusCode, details: str, call: CallContext
) -> tuple[type[HeronClientError], str]:
    server = f"the Heron server at {call.target}"
    lowered = details.lower()
    if code is grpc.StatusCode.UNAVAILABLE:
        if any(word in lowered for word in _TRANSPORT_WORDS):
            hint = ""
            if any(word in lowered for word in _TLS_WORDS):
                hint = (
                    " (check the TLS options: the CA that signed the server's certificate, and "
                    "a client certificate when the server requires mutual TLS)"
                )
            return ServerUnavailableError, f"cannot reach {server}: {details}{hint}"
        return ServerUnavailableError, f"{server} is unavailable: {details}"
    if code is grpc.StatusCode.UNAUTHENTICATED:
        why = "the token is wrong" if call.token_sent else "no token was sent and it needs one"
        return UnauthenticatedError, (
            f"{server} refused the call: {why} (set HERON_TOKEN or pass the token) ({details})"
        )
    if code is grpc.StatusCode.PERMISSION_DENIED:
        return PermissionDeniedError, f"{server} denied {call.method}: {details}"
    if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE):
        return InvalidRequestError, f"invalid request: {details}"
    if code is grpc.StatusCode.NOT_FOUND:
        return NotFoundError, f"not found: {details}"
    if code is grpc.StatusCode.ALREADY_EXISTS:
        return AlreadyExistsError, f"already exists: {details}"
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        within = f" within {call.deadline_s:g} s" if call.deadline_s is not None else ""
        # gRPC's own expiry says only "Deadline Exceeded"; a server's says what was done.
        said = f": {details}" if details and details != "Deadline Exceeded" else ""
        return DeadlineExceededError, f"{server} did not answer {call.method}{within}{said}"
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        hint = ""
        if "larger than max" in lowered:
            hint = (
                "; raise the limit on both ends (the client's max_message_mb, the server's "
                "max_receive_message_mb / max_send_message_mb) or send less per request"
            )
        return ResourceExhaustedError, f"{server} refused {call.method}: {details}{hint}"
    if code is grpc.StatusCode.UNIMPLEMENTED:
        return UnimplementedError, (
            f"{server} does not serve {call.method}: is it the right address (the control "
            "service serves Pipeline and Detections, the inference service Detector, on a port "
            "of its own), and does that server's version serve it yet?"
        )
    return ServerError, f"{server} failed ({code.name}): {details or 'no details'}"
