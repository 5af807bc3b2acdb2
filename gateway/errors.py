"""Errors of the gateway service, and the one place they become gRPC statuses.

    MedledgerError
    └── GatewayServiceError             the gateway could not do what was asked
        └── StatusError                 an outcome with its gRPC code, message and
                                        per-endpoint `ErrorDetail`s

Every servicer answers a failure through `abort`: the status code and message of the
error, and — as Fabric's gateway does — a `google.rpc.Status` in the
`grpc-status-details-bin` trailer whose details are `gateway.ErrorDetail{address,
msp_id, message}` messages, one per peer or orderer that was tried. `status_error_for`
maps every other exception the server may meet to a status, so the codes live here only:

    WireError, PolicySyntaxError      INVALID_ARGUMENT   the request does not decode
    PolicyError, IdentityError,       PERMISSION_DENIED  signature or ACL check failed
      CryptoError
    TimeoutError                      DEADLINE_EXCEEDED
    ChannelConfigError, ConfigError   FAILED_PRECONDITION
    any other MedledgerError          UNAVAILABLE
    anything else                     UNKNOWN (logged with its traceback)

`details_from_trailers` reads the details back; the Python client uses it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError
from google.rpc import status_pb2  # type: ignore[import-untyped]

from common.errors import (
    ChannelConfigError,
    ConfigError,
    CryptoError,
    IdentityError,
    MedledgerError,
    PolicyError,
    PolicySyntaxError,
    WireError,
)
from protos.gateway import gateway_pb2

__all__ = [
    "STATUS_DETAILS_KEY",
    "ErrorDetail",
    "GatewayServiceError",
    "StatusError",
    "abort",
    "describe_rpc_error",
    "details_from_trailers",
    "status_error_for",
    "status_trailer",
]

_LOG = logging.getLogger(__name__)

STATUS_DETAILS_KEY = "grpc-status-details-bin"
"""The trailer that carries a serialized google.rpc.Status (gRPC's rich error model)."""


@dataclass(frozen=True, slots=True)
class ErrorDetail:
    """What went wrong at one endpoint: its address, its MSP id and the error text."""

    address: str
    mspid: str
    message: str

    def to_proto(self) -> gateway_pb2.ErrorDetail:
        return gateway_pb2.ErrorDetail(
            address=self.address, msp_id=self.mspid, message=self.message
        )


class GatewayServiceError(MedledgerError):
    """Root of the errors the gateway service raises on purpose."""


class StatusError(GatewayServiceError):
    """A failed call's outcome: gRPC `code`, `message` and the endpoints' `details`."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        details: Iterable[ErrorDetail] = (),
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = tuple(details)

    def __repr__(self) -> str:
        return f"StatusError({self.code.name}, {self.message!r}, {len(self.details)})"


def status_error_for(error: BaseException) -> StatusError:
    """The status a servicer answers for `error` (see the module docstring)."""
    if isinstance(error, StatusError):
        return error
    code = _code_for(error)
    if code is grpc.StatusCode.UNKNOWN:
        _LOG.error("unexpected error in the gateway", exc_info=error)
    message = str(error) or type(error).__name__
    if isinstance(error, TimeoutError):
        message = message if str(error) else "the request timed out"
    return StatusError(code, message)


def _code_for(error: BaseException) -> grpc.StatusCode:
    if isinstance(error, WireError | PolicySyntaxError):
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(error, PolicyError | IdentityError | CryptoError):
        return grpc.StatusCode.PERMISSION_DENIED
    if isinstance(error, TimeoutError):
        return grpc.StatusCode.DEADLINE_EXCEEDED
    if isinstance(error, ChannelConfigError | ConfigError):
        return grpc.StatusCode.FAILED_PRECONDITION
    if isinstance(error, MedledgerError):
        return grpc.StatusCode.UNAVAILABLE
    return grpc.StatusCode.UNKNOWN


def status_trailer(error: StatusError) -> tuple[tuple[str, bytes], ...]:
    """The trailing metadata carrying `error` as a google.rpc.Status."""
    status = status_pb2.Status(code=error.code.value[0], message=error.message)
    for detail in error.details:
        packed = any_pb2.Any()
        packed.Pack(detail.to_proto())
        status.details.append(packed)
    return ((STATUS_DETAILS_KEY, status.SerializeToString()),)


async def abort(
    context: grpc.aio.ServicerContext[Any, Any], error: StatusError
) -> NoReturn:
    """End the call with `error`'s code, message and details; never returns."""
    await context.abort(
        error.code, error.message, trailing_metadata=status_trailer(error)
    )
    raise AssertionError("grpc.aio context.abort returned")  # pragma: no cover


def details_from_trailers(metadata: Iterable[Any] | None) -> tuple[ErrorDetail, ...]:
    """The `gateway.ErrorDetail`s in a call's trailing metadata (empty when absent)."""
    for key, value in metadata or ():
        if key != STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        status = status_pb2.Status()
        try:
            status.ParseFromString(value)
        except DecodeError:
            return ()
        return tuple(_details(status))
    return ()


def _details(status: status_pb2.Status) -> Iterable[ErrorDetail]:
    for packed in status.details:
        detail = gateway_pb2.ErrorDetail()
        try:
            detail.ParseFromString(packed.value)
        except DecodeError:
            continue
        yield ErrorDetail(detail.address, detail.msp_id, detail.message)


def describe_rpc_error(error: grpc.aio.AioRpcError) -> str:
    """A one-line description of a failed call, in the form Fabric's details use."""
    code = error.code()
    name = code.name.title().replace("_", "") if code is not None else "Unknown"
    return f"rpc error: code = {name} desc = {error.details() or ''}"
