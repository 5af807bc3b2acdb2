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
    ├── BlockVerificationError  a block from the orderer fails verification (signature,
    │                           chain, config); it is not committed
    ├── LifecycleError          a `_lifecycle` operation cannot be done (install, approve,
    │   │                       commit, queries); the message says why
    │   ├── InvalidPackage      chaincode install package bytes that do not parse
    │   ├── PackageNotFound     no package with that id is installed on this peer
    │   └── DefinitionNotFound  no committed or approved definition is found
    ├── ProposalRejected        the endorser refuses a proposal before running it
    │   ├── MalformedProposal   a layer is missing or wrong (header type, epoch, tx id)
    │   ├── AccessDenied        creator, signature or ACL check failed
    │   └── DuplicateTransaction  the tx id is already in the ledger
    └── ChannelError            joining or finding a channel on this peer
        ├── ChannelNotJoined    the peer has not joined that channel
        ├── ChannelExists       the peer has already joined it
        └── JoinRejected        the block cannot start the channel on this peer

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


class ProposalRejected(PeerError):
    """The endorser refused the proposal before simulating it (a check failed)."""


class MalformedProposal(ProposalRejected):
    """A proposal whose layers are missing or wrong: header type, epoch, nonce, tx id."""


class AccessDenied(ProposalRejected):
    """The creator is unknown or invalid, the signature fails, or an ACL is not met."""


class DuplicateTransaction(ProposalRejected):
    """The proposal's tx id is already in the channel's ledger."""

    def __init__(self, message: str, *, tx_id: str) -> None:
        super().__init__(message)
        self.tx_id = tx_id


class ChannelError(PeerError):
    """A channel could not be found, joined or opened on this peer."""


class ChannelNotJoined(ChannelError):
    """The peer has not joined the channel."""

    def __init__(self, message: str, *, channel_id: str) -> None:
        super().__init__(message)
        self.channel_id = channel_id


class ChannelExists(ChannelError):
    """The peer has already joined the channel."""


class JoinRejected(ChannelError):
    """The block cannot start a channel on this peer (not a genesis config block, ...)."""


class LifecycleError(PeerError):
    """A `_lifecycle` operation cannot be done; the message says why (Fabric's text)."""


class InvalidPackage(LifecycleError):
    """Chaincode install package bytes that do not parse or cannot be run here."""


class PackageNotFound(LifecycleError):
    """No package with this id is installed on this peer."""

    def __init__(self, message: str, *, package_id: str) -> None:
        super().__init__(message)
        self.package_id = package_id


class DefinitionNotFound(LifecycleError):
    """No committed (or approved) chaincode definition matches the request."""
