"""What block validation needs from outside: channel config, committed state, signatures.

The validator is pure over these seams. `LedgerView` is the committed ledger as of the
previous block (the committer adapts a `ChannelLedger`; tests use dictionaries);
`SignatureVerifier` checks batches of signatures, serially here or in a process pool
(`peer.committer`). Batches are submitted while the validator is still decoding the
rest of the block, and their verdicts collected when every signature is known, so a
pool can verify one part of a block while this process prepares the next.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from common.channelconfig import ChannelConfig
from common.crypto import verify_signature
from common.errors import CryptoError
from peer.ledger.statedb import Version
from peer.lifecycle import ChaincodeDefinition

__all__ = [
    "HashedKey",
    "LedgerView",
    "PendingVerdicts",
    "SerialVerifier",
    "SignatureCheck",
    "SignatureVerifier",
    "ValidationContext",
    "verify_serially",
]

HashedKey = tuple[str, str, bytes]
"""(namespace, collection, SHA-256 of the key)."""


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """One ECDSA signature to check: the signer's certificate (DER or PEM), the message."""

    certificate: bytes
    message: bytes
    signature: bytes


PendingVerdicts = Callable[[], Sequence[bool]]
"""Waits for a submitted batch and returns one verdict per check, in order."""


class SignatureVerifier(Protocol):
    """Checks batches of signatures, possibly while the caller goes on working."""

    def submit(self, checks: Sequence[SignatureCheck]) -> PendingVerdicts:
        """Start checking `checks`; call the result to get their verdicts."""


class SerialVerifier:
    """Checks each batch at once, in this process."""

    def submit(self, checks: Sequence[SignatureCheck]) -> PendingVerdicts:
        verdicts = verify_serially(checks)
        return lambda: verdicts


class LedgerView(Protocol):
    """The channel's committed ledger as of the block before the one being validated."""

    def stored_tx_ids(self, tx_ids: Collection[str]) -> Collection[str]:
        """Those of `tx_ids` that a committed block already holds, in one look-up."""

    def chaincode_definition(self, name: str) -> ChaincodeDefinition | None:
        """The committed definition of a chaincode (`peer.lifecycle.read_definition`)."""

    def versions(
        self, keys: Collection[tuple[str, str]]
    ) -> Mapping[tuple[str, str], Version]:
        """Committed versions of (namespace, key) pairs; absent keys are left out."""

    def range_versions(
        self, ns: str, start_key: str, end_key: str
    ) -> Iterable[tuple[str, Version]]:
        """Keys in [start_key, end_key) ("" end: unbounded) with versions, in key order."""

    def metadata(self, ns: str, key: str) -> Mapping[str, bytes] | None:
        """The committed metadata of a key ({} when none), None when the key is absent."""

    def metadata_of(
        self, keys: Collection[tuple[str, str]]
    ) -> Mapping[tuple[str, str], Mapping[str, bytes]]:
        """The committed metadata of many (namespace, key) pairs, in one look-up.

        Keys that are absent or have no metadata are left out.
        """

    def hashed_versions(
        self, keys: Collection[HashedKey]
    ) -> Mapping[HashedKey, Version]:
        """Committed versions of private keys by hash; absent ones are left out."""

    def hashed_metadata(
        self, ns: str, coll: str, key_hash: bytes
    ) -> Mapping[str, bytes] | None:
        """The committed metadata of a private key by hash, None when it is absent."""


@dataclass(frozen=True, slots=True)
class ValidationContext:
    """Everything `validate_block` reads besides the block itself."""

    config: ChannelConfig
    ledger: LedgerView
    verify: SignatureVerifier


def verify_serially(checks: Sequence[SignatureCheck]) -> list[bool]:
    """Check each signature in this process (certificates are parsed once and cached)."""
    return [_verify_one(check) for check in checks]


def _verify_one(check: SignatureCheck) -> bool:
    try:
        verify_signature(
            check.certificate, signature=check.signature, message=check.message
        )
    except CryptoError:
        return False
    return True
