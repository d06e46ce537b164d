"""What every call on a kit server goes through: the bearer token, the deadline, and the
mapping of the errors a servicer raises to status codes (never a traceback on the wire)."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn

import grpc

from heron.core.grpc.errors import InvalidArgumentError, NotFoundError, UnavailableError

log = logging.getLogger(__name__)

# Probes (kubelet, load balancers) carry no token; the health service says nothing secret.
TOKEN_EXEMPT = ("/grpc.health.v1.Health/",)
INTERNAL_DETAIL = "internal error; see the server's log"
UNAUTHENTICATED_DETAIL = (
    "missing or wrong bearer token: send metadata 'authorization: Bearer <token>'"
)

_MAPPED: Sequence[tuple[type[Exception], grpc.StatusCode]] = (
    (InvalidArgumentError, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (UnavailableError, grpc.StatusCode.UNAVAILABLE),
)

Behaviour = Callable[[Any, grpc.ServicerContext], Any]


class KitInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Checks the token (unless exempt), refuses calls whose deadline has passed, and maps
    exceptions of the handler to status codes."""

    def __init__(self, token: str | None) -> None:
        self._expected = f"Bearer {token}".encode() if token is not None else None

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(details)
        if handler is None:
            return None  # unknown method: gRPC answers UNIMPLEMENTED
        method = str(details.method)
        exempt = self._expected is None or method.startswith(TOKEN_EXEMPT)
        if not exempt and not self._authorized(details.invocation_metadata):
            return _rebuild(handler, _deny)
        return _rebuild(handler, lambda behaviour: _guarded(behaviour, method, handler))

    def _authorized(self, metadata: Sequence[tuple[str, str | bytes]] | None) -> bool:
        assert self._expected is not None
        for key, value in metadata or ():
            if key.lower() == "authorization":
                given = value if isinstance(value, bytes) else value.encode()
                return hmac.compare_digest(given, self._expected)
        return False


def _deny(_behaviour: Behaviour) -> Behaviour:
    def deny(_request: Any, context: grpc.ServicerContext) -> NoReturn:
        log.warning("refused a call without the right bearer token from %s", context.peer())
        context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_DETAIL)
        raise AssertionError("unreachable: abort raises")

    return deny


def _guarded(behaviour: Behaviour, method: str, handler: grpc.RpcMethodHandler) -> Behaviour:
    if handler.response_streaming:

        def streaming(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            _check_deadline(context)
            try:
                yield from behaviour(request, context)
            except Exception as e:
                _abort_for(e, context, method)

        return streaming

    def unary(request: Any, context: grpc.ServicerContext) -> Any:
        _check_deadline(context)
        try:
            return behaviour(request, context)
        except Exception as e:
            _abort_for(e, context, method)

    return unary


def _check_deadline(context: grpc.ServicerContext) -> None:
    """A call that arrives with its deadline already spent gets no work done."""
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "the deadline passed before the call ran")


def _abort_for(error: Exception, context: grpc.ServicerContext, method: str) -> NoReturn:
    code = context.code()
    if code is not None and code != grpc.StatusCode.OK:
        raise error  # the handler set its status itself (context.abort)
    if isinstance(error, grpc.RpcError):
        raise error  # the call itself ended (a client cancelled its request stream)
    for kind, status in _MAPPED:
        if isinstance(error, kind):
            context.abort(status, str(error))
    log.error("%s failed", method, exc_info=error)
    context.abort(grpc.StatusCode.INTERNAL, INTERNAL_DETAIL)
    raise AssertionError("unreachable: abort raises")


def _rebuild(
    handler: grpc.RpcMethodHandler, wrap: Callable[[Behaviour], Behaviour]
) -> grpc.RpcMethodHandler:
    """The same kind of handler (unary/streaming each way) around a wrapped behaviour."""
    kinds = {
        (False, False): (grpc.unary_unary_rpc_method_handler, handler.unary_unary),
        (False, True): (grpc.unary_stream_rpc_method_handler, handler.unary_stream),
        (True, False): (grpc.stream_unary_rpc_method_handler, handler.stream_unary),
        (True, True): (grpc.stream_stream_rpc_method_handler, handler.stream_stream),
    }
    build, behaviour = kinds[(handler.request_streaming, handler.response_streaming)]
    return build(
        wrap(behaviour),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
