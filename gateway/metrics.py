"""The gateway's metrics: every gRPC call counted by method and outcome.

`RequestMetrics` is a server interceptor on the gateway's listener: per call it
counts `gateway_requests_received{method}`, then `gateway_requests_completed{method,
success}` and observes `gateway_request_duration{method,success}` when the call ends
(success: it ended without an error status). Wrapped handlers are made once per
method, so a call costs one extra coroutine frame, a small context wrapper and a few
dict lookups.

grpc.aio's `context.abort` sends the error status to the client before it raises, so
a call that aborts is counted inside `abort`: whoever has seen the error can already
see it counted.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc

from common.metrics import REGISTRY

__all__ = ["REQUESTS_COMPLETED", "REQUESTS_RECEIVED", "RequestMetrics"]

REQUESTS_RECEIVED = REGISTRY.counter(
    "gateway_requests_received",
    "The number of gateway requests received.",
    labels=("method",),
)
REQUESTS_COMPLETED = REGISTRY.counter(
    "gateway_requests_completed",
    "The number of gateway requests completed.",
    labels=("method", "success"),
)
REQUEST_DURATION = REGISTRY.histogram(
    "gateway_request_duration",
    "The time to complete a gateway request, in seconds.",
    labels=("method", "success"),
)

_Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
_Continuation: TypeAlias = (
    "Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]]"
)

if TYPE_CHECKING:
    _Interceptor = grpc.aio.ServerInterceptor[Any, Any]
else:  # the runtime class is not generic
    _Interceptor = grpc.aio.ServerInterceptor
_KINDS = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")


class RequestMetrics(_Interceptor):
    """Counts and times every call of the server it is installed on."""

    def __init__(self) -> None:
        self._wrapped: dict[str, _Handler] = {}

    async def intercept_service(
        self, continuation: _Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> _Handler:
        handler: _Handler | None = await continuation(handler_call_details)
        if handler is None:  # no such method: grpc answers UNIMPLEMENTED
            return handler  # type: ignore[return-value]
        path = handler_call_details.method
        wrapped = self._wrapped.get(path)
        if wrapped is None:
            wrapped = self._wrapped[path] = _wrap(handler, path.rsplit("/", 1)[-1])
        return wrapped


def _wrap(handler: Any, method: str) -> Any:
    for kind in _KINDS:
        behavior = getattr(handler, kind)
        if behavior is not None:
            if inspect.isasyncgenfunction(behavior):
                return handler._replace(**{kind: _timed_generator(behavior, method)})
            return handler._replace(**{kind: _timed(behavior, method)})
    return handler


def _timed(behavior: Any, method: str) -> Callable[..., Awaitable[Any]]:
    async def call(request: Any, context: Any) -> Any:
        REQUESTS_RECEIVED.labels(method).inc()
        tracked = _Call(context, method)
        try:
            result = await behavior(request, tracked)
            tracked.complete(_success(context))
            return result
        finally:
            tracked.complete("false")

    return call


def _timed_generator(behavior: Any, method: str) -> Callable[..., AsyncIterator[Any]]:
    async def call(request: Any, context: Any) -> AsyncIterator[Any]:
        REQUESTS_RECEIVED.labels(method).inc()
        tracked = _Call(context, method)
        try:
            async for response in behavior(request, tracked):
                yield response
            tracked.complete(_success(context))
        finally:
            tracked.complete("false")

    return call


class _Call:
    """The servicer context of one call, counting the call once when it completes."""

    __slots__ = ("_context", "_counted", "_method", "_start")

    def __init__(self, context: Any, method: str) -> None:
        self._context = context
        self._method = method
        self._start = time.perf_counter()
        self._counted = False

    def complete(self, success: str) -> None:
        if not self._counted:
            self._counted = True
            REQUESTS_COMPLETED.labels(self._method, success).inc()
            REQUEST_DURATION.labels(self._method, success).observe(
                time.perf_counter() - self._start
            )

    async def abort(
        self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()
    ) -> None:
        self.complete("false")
        await self._context.abort(code, details, trailing_metadata)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


def _success(context: Any) -> str:
    code = context.code()
    return "true" if code is None or code == grpc.StatusCode.OK else "false"
