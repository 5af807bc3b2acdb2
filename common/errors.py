"""Errors raised by the shared kernel, all under one project root.

    MedledgerError                      root of every error medledger raises on purpose
    ├── CryptoError                     keys, signatures and certificates as bytes
    │   ├── InvalidSignature            malformed, high-S or not matching the message
    │   ├── MalformedKey
    │   └── MalformedCertificate
    ├── IdentityError                   who signed, and may they?
    │   ├── MalformedIdentity           SerializedIdentity bytes that do not parse
    │   ├── UnknownMsp                  the MSP id is not one of this channel's
    │   ├── UntrustedCertificate        no chain to a root or intermediate CA of the MSP
    │   ├── ExpiredCertificate          outside its validity period
    │   ├── RevokedCertificate          listed in a CRL of the MSP
    │   └── InvalidNodeOU               NodeOUs are on and the certificate has no role OU
    ├── PolicyError
    │   ├── PolicySyntaxError           a policy string that does not parse (with position)
    │   ├── UnknownPolicy               no policy at that path
    │   └── PolicyNotSatisfied          the signatures do not satisfy the policy
    ├── WireError                       bytes from the network or disk that are not what
    │   │                               the protocol says they must be
    │   ├── TxIdMismatch                tx id differs from SHA-256(nonce ‖ creator)
    │   └── ProposalResponseMismatch    endorsers returned payloads that differ
    ├── ConfigError                     a YAML file a person wrote is wrong (file, key, why)
    ├── ChannelConfigError              a channel config tree is malformed (names the path)
    ├── ConfigUpdateError               a config update cannot be applied (names the element)
    │   ├── ReadSetMismatch             the read set names an element or version not current
    │   ├── ConfigVersionMismatch       a written element's version is not current + 1 (0: new)
    │   └── ModPolicyNotSatisfied       the signatures do not satisfy an element's mod_policy
    └── BlockStoreError                 the block store cannot do what was asked
        ├── CorruptBlockStore           stored bytes fail a check (names the file and offset)
        ├── BlockRejected               an appended block does not extend the chain
        ├── BlockNotFound               no stored block with that number or hash
        └── TxNotFound                  no stored transaction with that id

Codes recorded on the ledger (TxValidationCode) are not exceptions; these are for
things that could not be processed.
"""

from __future__ import annotations


class MedledgerError(Exception):
    """Root of every error medledger raises on purpose."""


class CryptoError(MedledgerError):
    """A key, signature or certificate could not be used."""


class InvalidSignature(CryptoError):
    """The signature is malformed, high-S, or does not match the message and key."""


class MalformedKey(CryptoError):
    """Key bytes (PEM or DER) that do not parse or use an unsupported curve."""


class MalformedCertificate(CryptoError):
    """Certificate bytes that do not parse as an X.509 certificate."""


class IdentityError(MedledgerError):
    """An identity could not be deserialised or is not valid for its MSP."""


class MalformedIdentity(IdentityError):
    """SerializedIdentity bytes that do not parse or hold no certificate."""


class UnknownMsp(IdentityError):
    """The identity names an MSP that is not known here."""

    def __init__(self, message: str, *, mspid: str) -> None:
        super().__init__(message)
        self.mspid = mspid


class UntrustedCertificate(IdentityError):
    """The certificate does not chain to a root or intermediate CA of its MSP."""


class ExpiredCertificate(IdentityError):
    """The certificate is outside its validity period."""


class RevokedCertificate(IdentityError):
    """The certificate's serial number is in a CRL of its issuing CA."""


class InvalidNodeOU(IdentityError):
    """NodeOUs are enabled and the certificate carries none of the role OUs."""


class PolicyError(MedledgerError):
    """A policy could not be parsed, found or satisfied."""


class PolicySyntaxError(PolicyError):
    """A policy string that does not parse; `position` is the 0-based offset."""

    def __init__(self, message: str, *, text: str, position: int) -> None:
        super().__init__(f"{message} at position {position} in {text!r}")
        self.text = text
        self.position = position


class UnknownPolicy(PolicyError):
    """No policy exists at the requested path."""


class PolicyNotSatisfied(PolicyError):
    """The supplied signatures do not satisfy the policy."""


class WireError(MedledgerError):
    """Bytes that are not what the protocol requires (truncated, wrong type, missing field)."""


class TxIdMismatch(WireError):
    """The transaction id is not hex(SHA-256(nonce ‖ creator))."""


class ProposalResponseMismatch(WireError):
    """Proposal responses whose payloads are not byte-identical cannot form one tx."""


class ConfigError(MedledgerError):
    """A configuration file is wrong; the message names the file, the key and the expectation."""


class ChannelConfigError(MedledgerError):
    """A channel config is malformed; `path` names the element, e.g. /Channel/Orderer/BatchSize."""

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


class ConfigUpdateError(MedledgerError):
    """A config update cannot be applied; `path` names the element, e.g. /Channel/Orderer.

    `path` is empty when the fault is not one element's (wrong channel, no signatures).
    """

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


class ReadSetMismatch(ConfigUpdateError):
    """The read set names an element the config lacks, or at a version it is not at."""


class ConfigVersionMismatch(ConfigUpdateError):
    """A written element's version is not its current version + 1 (or 0 when it is new)."""


class ModPolicyNotSatisfied(ConfigUpdateError):
    """The update's signatures do not satisfy the mod_policy of an element it modifies."""


class BlockStoreError(MedledgerError):
    """The block store cannot do what was asked (closed, failed, or see the subclasses)."""


class CorruptBlockStore(BlockStoreError):
    """Stored bytes fail a checksum, hash-chain or index check; `path` and `offset` locate them."""

    def __init__(self, message: str, *, path: str, offset: int) -> None:
        super().__init__(f"{message} ({path} at offset {offset})")
        self.path = path
        self.offset = offset


class BlockRejected(BlockStoreError):
    """An appended block does not extend the chain: wrong number, previous hash or data hash."""

    def __init__(
        self, message: str, *, block_number: int, expected: object, actual: object
    ) -> None:
        super().__init__(f"block {block_number}: {message}")
        self.block_number = block_number
        self.expected = expected
        self.actual = actual


class BlockNotFound(BlockStoreError):
    """No stored block has that number or hash."""


class TxNotFound(BlockStoreError):
    """No stored transaction has that id."""

    def __init__(self, message: str, *, tx_id: str) -> None:
        super().__init__(message)
        self.tx_id = tx_id
