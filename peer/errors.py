"""Errors the peer raises on purpose, all under `common.errors.MedledgerError`.

    PeerError
    ├── QueryError              a state request cannot be answered as asked (the
    │   │                       chaincode or client sent something wrong)
    │   ├── InvalidKey          a key or composite-key part breaks Fabric's key rules
    │   ├── InvalidBookmark     a pagination bookmark this peer did not hand out
    │   ├── MangoQueryError     a rich (Mango) query or index definition is malformed
    │   ├── CollectionError     a collection the chaincode did not define, or one the
    │   │                       proposal's creator may not read or write
    │   └── UnsupportedTransaction  a mix Fabric's simulator refuses (writes after a
    │                           paginated or private-data query, use after done)
    ├── ChaincodeError          a chaincode could not run the transaction
    │   ├── ChaincodeUnavailable  not registered, failed to start, or its stream ended
    │   ├── ChaincodeTimeout    no COMPLETED within the execution timeout
    │   └── ChaincodeFailed     the chaincode answered ERROR instead of COMPLETED
    ├── LedgerError             local storage is unusable; the process must stop
    ├── ChaincodeDefinitionError  a chaincode definition in `_lifecycle` state that does
    │                           not decode as one
    └── BlockVerificationError  a block from the orderer fails verification (signature,
                                chain, config); it is not committed

A `QueryError` is returned to the caller (the chaincode sees an error); a
`LedgerError` means the channel's database cannot be trusted.
"""

from __future__ import annotations

from common.errors import MedledgerError


class PeerError(MedledgerError):
    """Root of every error the peer raises on purpose."""


class QueryError(PeerError):
    """A state request that cannot be answered as asked."""


class InvalidKey(QueryError):
    """A key, or a part of a composite key, that breaks Fabric's key rules."""


class InvalidBookmark(QueryError):
    """A pagination bookmark that is not one this peer hands out for that query."""


class MangoQueryError(QueryError):
    """A malformed Mango query, selector or index definition; the message says what is wrong."""


class CollectionError(QueryError):
    """A collection the chaincode did not define, or one the creator may not read or write."""


class UnsupportedTransaction(QueryError):
    """A request Fabric's simulator refuses in this transaction (see the message)."""


class ChaincodeError(PeerError):
    """A chaincode could not run the transaction; the message says why."""


class ChaincodeUnavailable(ChaincodeError):
    """No registered chaincode for the package: not started, failed, or its stream ended."""


class ChaincodeTimeout(ChaincodeError):
    """The chaincode sent no COMPLETED within the execution timeout."""


class ChaincodeFailed(ChaincodeError):
    """The chaincode answered ERROR (the message carries its text)."""


class LedgerError(PeerError):
    """The channel database is unusable (schema too new, corrupt, or unwritable)."""


class ChaincodeDefinitionError(PeerError):
    """A `_lifecycle` entry that is not a well-formed chaincode definition."""


class BlockVerificationError(PeerError):
    """A block that must not be committed: bad orderer signature, chain or config update."""

    def __init__(self, message: str, *, block_number: int) -> None:
        super().__init__(message)
        self.block_number = block_number
