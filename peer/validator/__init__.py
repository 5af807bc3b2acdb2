"""Block validation: a TxValidationCode for every transaction, as Fabric 2.5's committer.

Pure over its `ValidationContext` (channel config, committed ledger view, signature
verifier): the same block and context always give the same codes, on every peer.

- `transaction`: byte-level checks of one envelope, in rule order;
- `endorsement`: chaincode definitions and chaincode, collection and key-level policies;
- `mvcc`: reads, range queries and hashed reads against committed state and the
  block's earlier valid writes;
- `block`: `validate_block`, which walks the rules per transaction in block order.
"""

from peer.validator.block import BlockValidation, evaluate_block, validate_block
from peer.validator.context import (
    HashedKey,
    LedgerView,
    PendingVerdicts,
    SerialVerifier,
    SignatureCheck,
    SignatureVerifier,
    ValidationContext,
    verify_serially,
)

__all__ = [
    "BlockValidation",
    "HashedKey",
    "LedgerView",
    "PendingVerdicts",
    "SerialVerifier",
    "SignatureCheck",
    "SignatureVerifier",
    "ValidationContext",
    "evaluate_block",
    "validate_block",
    "verify_serially",
]
