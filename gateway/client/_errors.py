"""The errors the client raises, one per phase of a transaction.

    MedledgerError
    └── ClientError                 the client could not do what was asked
        ├── GatewayError            a gateway call failed: gRPC `code`, message and the
        │   │                       per-endpoint `details` (address, MSP id, message)
        │   ├── EndorseError        endorsing failed; carries `transaction_id`
        │   ├── SubmitError         the orderers did not accept the transaction
        │   └── CommitStatusError   the commit status could not be obtained
        └── CommitError             the transaction committed but is invalid; `code` is
                                    its TxValidationCode (e.g. 11 MVCC_READ_CONFLICT)

Evaluate and event streams raise plain `GatewayError`s.
"""

from __future__ import annotations

import grpc

from common.errors import MedledgerError
from gateway.errors import ErrorDetail, details_from_trailers
from protos.peer.transaction_pb2 import TxValidationCode

__all__ = [
    "ClientError",
    "CommitError",
    "CommitStatusError",
    "EndorseError",
    "GatewayError",
    "SubmitError",
    "gateway_error",
]


class ClientError(MedledgerError):
    """Root of the errors the gateway client raises."""


class GatewayError(ClientError):
    """A gateway call failed; `code` is its gRPC status code, `details` per endpoint."""

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode,
        details: tuple[ErrorDetail, ...] = (),
        transaction_id: str = "",
    ) -> None:
        super().__init__(message)
        self.code = code
        self.details = details
        self.transaction_id = transaction_id

    def __str__(self) -> str:
        text = f"{self.code.name}: {self.args[0]}"
        for detail in self.details:
            text += f"\n  {detail.address} ({detail.mspid}): {detail.message}"
        return text


class EndorseError(GatewayError):
    """Collecting endorsements failed."""


class SubmitError(GatewayError):
    """No orderer accepted the transaction."""


class CommitStatusError(GatewayError):
    """The commit status of a submitted transaction could not be obtained."""


class CommitError(ClientError):
    """The transaction was committed, but invalid: `code` says why."""

    def __init__(self, transaction_id: str, code: int) -> None:
        self.transaction_id = transaction_id
        self.code = code
        self.code_name = _code_name(code)
        super().__init__(
            f"Transaction {transaction_id} failed to commit with status code {code} "
            f"({self.code_name})"
        )


def gateway_error(
    error: grpc.aio.AioRpcError,
    kind: type[GatewayError] = GatewayError,
    *,
    transaction_id: str = "",
) -> GatewayError:
    """A client error of `kind` for a failed call, with the status details decoded."""
    code: grpc.StatusCode = error.code()
    return kind(
        error.details() or code.name,
        code=code,
        details=details_from_trailers(error.trailing_metadata()),
        transaction_id=transaction_id,
    )


def _code_name(code: int) -> str:
    try:
        return TxValidationCode.Name(code)
    except ValueError:
        return str(code)
