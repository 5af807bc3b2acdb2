"""Errors of the chaincode SDK, all under the medledger root.

    MedledgerError
    └── ChaincodeSdkError           root of every error the chaincode SDK raises
        ├── ChaincodeError          raised by chaincode code to fail a transaction with a
        │                           status (default 500) and a message for the client
        ├── PeerRequestError        the peer answered ERROR to a stub call, or never answered
        ├── StreamClosedError       the stream to the peer ended while a call was waiting
        ├── ShimProtocolError       the peer broke the chaincode stream protocol
        ├── InvalidKeyError         a key or composite-key part that breaks Fabric's rules
        └── ServeConfigError        `python -m chaincode serve` cannot start: a module,
                                    address, chaincode id or TLS file is wrong

The contract API turns any exception escaping a transaction into a status-500 response
carrying its message; `ChaincodeError` chooses another failure status.
"""

from __future__ import annotations

from common.errors import MedledgerError

STATUS_ERROR = 500
"""The status of a failed transaction when the chaincode does not pick another."""
STATUS_ERROR_THRESHOLD = 400
"""Statuses at or above this are failures: the peer does not endorse them."""


class ChaincodeSdkError(MedledgerError):
    """Root of every error the chaincode SDK raises on purpose."""


class ChaincodeError(ChaincodeSdkError):
    """Fail the current transaction with `status` (≥ 400) and `message`.

    Raise it from a contract transaction; the client sees the status and the message,
    and the peer does not endorse the proposal.
    """

    def __init__(self, message: str, *, status: int = STATUS_ERROR) -> None:
        if status < STATUS_ERROR_THRESHOLD:
            raise ValueError(
                f"a chaincode error needs a failure status ≥ 400, got {status}"
            )
        super().__init__(message)
        self.message = message
        self.status = status


class PeerRequestError(ChaincodeSdkError):
    """The peer refused a stub call (it answered ERROR) or did not answer in time."""

    def __init__(self, message: str, *, request: str) -> None:
        super().__init__(message)
        self.request = request


class StreamClosedError(ChaincodeSdkError):
    """The stream to the peer ended while a stub call was waiting for its answer."""


class ShimProtocolError(ChaincodeSdkError):
    """The peer sent a message the chaincode stream protocol does not allow here."""


class InvalidKeyError(ChaincodeSdkError, ValueError):
    """A state key, range bound or composite-key part that Fabric does not allow."""


class ServeConfigError(ChaincodeSdkError):
    """The serve command's module, address, chaincode id or TLS settings are unusable."""
