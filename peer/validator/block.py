"""Validating a block: one TxValidationCode per transaction, in block order.

Validate phase, between Deliver and the ledger. Each transaction gets the code of the
first rule it breaks, in the order Fabric 2.5's committer applies them:

    structure up to the header (`transaction`)         INVALID_OTHER_REASON, BAD_PAYLOAD,
                                                       BAD_COMMON_HEADER
    creator valid in its MSP, signature over payload   BAD_CREATOR_SIGNATURE
    tx id, endorser structure, channel (`transaction`) BAD_PROPOSAL_TXID, ...
    tx id not already in the ledger                    DUPLICATE_TXID
    response payload, rwset, ids (`transaction`)       BAD_RWSET, INVALID_CHAINCODE, ...
    chaincode definitions (`endorsement`)              INVALID_CHAINCODE, EXPIRED_CHAINCODE
    endorsement policies (`endorsement`)               ENDORSEMENT_POLICY_FAILURE
    tx id not used by an earlier transaction here      DUPLICATE_TXID
    reads, ranges, hashed reads (`mvcc`)               MVCC_READ_CONFLICT,
                                                       PHANTOM_READ_CONFLICT

A CONFIG transaction must be a valid update of the current config
(`common.configtx.validate_config_envelope`); if it is not, the whole block is refused,
as Fabric's peer refuses it. A first pass decodes every transaction and hands its
signatures to the context's verifier in parts (`SUBMIT_CHECKS` at a time) while it
decodes the rest; the second pass walks the rules above with the verdicts. Certificates
are judged at the time in the transaction's own channel header, so every peer reaches
the same verdict whenever it validates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from common.channelconfig import ChannelConfig
from common.configtx import validate_config_envelope
from common.errors import ConfigUpdateError, IdentityError
from common.msp import Identity
from peer.errors import BlockVerificationError
from peer.ledger.committed_txs import DecodedTx
from peer.ledger.statedb import Version
from peer.validator.context import (
    LedgerView,
    PendingVerdicts,
    SignatureCheck,
    ValidationContext,
)
from peer.validator.endorsement import EndorsementRules, MetadataKey, metadata_writes
from peer.validator.identities import MomentMsps
from peer.validator.mvcc import BlockWrites, CommittedVersions, validate_mvcc
from peer.validator.transaction import EndorserTx, Inspection, inspect_envelope
from protos.common import common_pb2
from protos.peer import transaction_pb2
from protos.peer.transaction_pb2 import TxValidationCode

__all__ = ["BlockValidation", "evaluate_block", "validate_block"]

_VALID = transaction_pb2.VALID
SUBMIT_CHECKS = 256
"""Signatures handed to the verifier at a time while the rest of the block is decoded."""


@dataclass(frozen=True, slots=True)
class BlockValidation:
    """The codes of a block's transactions, and the channel config a valid CONFIG sets.

    `decoded` holds, by position, each endorser transaction as the validator decoded
    it (None for the others), for `ChannelLedger.commit_block` to commit without
    decoding the block again.
    """

    codes: tuple[TxValidationCode, ...]
    config: ChannelConfig | None = None
    decoded: tuple[DecodedTx | None, ...] = ()


def validate_block(
    block: common_pb2.Block, *, context: ValidationContext
) -> list[TxValidationCode]:
    """One TxValidationCode per transaction of `block`, in order.

    Raises:
        BlockVerificationError: a CONFIG transaction is not a valid config update.
    """
    return list(evaluate_block(block, context=context).codes)


def evaluate_block(
    block: common_pb2.Block, *, context: ValidationContext
) -> BlockValidation:
    """`validate_block`, also returning the config a valid CONFIG transaction sets.

    Raises:
        BlockVerificationError: a CONFIG transaction is not a valid config update.
    """
    config = context.config
    rules = EndorsementRules(config, context.ledger)
    planner = _Planner(context, rules)
    inspections = [
        inspect_envelope(data, channel_id=config.channel_id) for data in block.data.data
    ]
    plans = [planner.plan(inspection) for inspection in inspections]
    planner.submit_rest()
    _mark_ledger_duplicates(plans, context.ledger)
    # Committed reads for the second pass happen while the verifier works.
    candidates = [plan.endorser for plan in plans if plan.endorser is not None]
    committed = CommittedVersions.load(context.ledger, candidates)
    rules.prefetch(candidates)
    judge = _Judge(
        block_number=block.header.number,
        context=context,
        rules=rules,
        verdicts=planner.verdicts(),
        committed=committed,
    )
    codes = tuple(judge.judge(position, plan) for position, plan in enumerate(plans))
    return BlockValidation(
        codes=codes,
        config=judge.new_config,
        decoded=tuple(inspection.decoded for inspection in inspections),
    )


@dataclass(slots=True)
class _Plan:
    """One transaction after the first pass: a code already, or what is left to judge."""

    early_code: TxValidationCode | None
    tx_id: str = ""
    msps: MomentMsps | None = None
    creator_check: int | None = None
    late_code: TxValidationCode | None = None
    endorser: EndorserTx | None = None
    endorsers: list[tuple[Identity, int]] = field(default_factory=list)
    config_envelope: bytes = b""
    ledger_checked: bool = False
    """The tx id is still to be looked up in the ledger (DUPLICATE_TXID)."""


class _Planner:
    """The first pass: MSP and ledger checks, and the signatures to verify."""

    def __init__(self, context: ValidationContext, rules: EndorsementRules) -> None:
        self._context = context
        self._rules = rules
        self._msps: dict[int | None, MomentMsps | None] = {}
        self._identities: dict[bytes, Identity | IdentityError] = {}
        self._batch: list[SignatureCheck] = []
        self._submitted: list[tuple[int, PendingVerdicts]] = []
        self._count = 0

    def plan(self, inspection: Inspection) -> _Plan:
        if inspection.early_code is not None:
            return _Plan(early_code=inspection.early_code)
        msps = self._msps_at(inspection.timestamp_s)
        plan = _Plan(
            early_code=None,
            tx_id=inspection.tx_id,
            msps=msps,
            creator_check=self._creator_check(inspection, msps),
            late_code=inspection.late_code,
            config_envelope=inspection.config_envelope,
        )
        tx = inspection.endorser
        if plan.late_code is None and tx is not None:
            plan.ledger_checked = True
            plan.late_code = self._rules.check_definitions(tx)
            plan.endorser = tx if plan.late_code is None else None
        if (
            plan.endorser is not None
            and plan.creator_check is not None
            and msps is not None
        ):
            plan.endorsers = self._endorsement_checks(plan.endorser, msps)
        if len(self._batch) >= SUBMIT_CHECKS:
            self._submit()
        return plan

    def submit_rest(self) -> None:
        """Hand the verifier the signatures not submitted yet."""
        self._submit()

    def verdicts(self) -> list[bool]:
        """Every signature's verdict, by check index (waits for the verifier)."""
        self._submit()
        verdicts: list[bool] = []
        for size, pending in self._submitted:
            batch = pending()
            if len(batch) != size:
                raise AssertionError("the verifier must return one verdict per check")
            verdicts.extend(batch)
        return verdicts

    def _submit(self) -> None:
        if self._batch:
            batch, self._batch = self._batch, []
            self._submitted.append((len(batch), self._context.verify.submit(batch)))

    def _creator_check(
        self, inspection: Inspection, msps: MomentMsps | None
    ) -> int | None:
        """The index of the creator's signature check; None when the creator is invalid."""
        identity = _valid_identity(inspection.creator, msps)
        if identity is None:
            return None
        return self._add(identity, inspection.payload, inspection.signature)

    def _endorsement_checks(
        self, tx: EndorserTx, msps: MomentMsps
    ) -> list[tuple[Identity, int]]:
        checks = []
        for endorsement in tx.endorsements:
            try:
                identity = msps.deserialize_identity(endorsement.endorser)
            except IdentityError:
                continue
            message = tx.response_payload + endorsement.endorser
            checks.append(
                (identity, self._add(identity, message, endorsement.signature))
            )
        return checks

    def _add(self, identity: Identity, message: bytes, signature: bytes) -> int:
        self._batch.append(SignatureCheck(identity.certificate.der, message, signature))
        self._count += 1
        return self._count - 1

    def _msps_at(self, timestamp_s: int | None) -> MomentMsps | None:
        if timestamp_s not in self._msps:
            moment = _moment(timestamp_s)
            self._msps[timestamp_s] = (
                None
                if moment is None
                else MomentMsps(
                    self._context.config.msp_manager.at_time(moment),
                    identities=self._identities,
                )
            )
        return self._msps[timestamp_s]


class _Judge:
    """The second pass: walks each transaction's remaining rules in block order."""

    def __init__(
        self,
        *,
        block_number: int,
        context: ValidationContext,
        rules: EndorsementRules,
        verdicts: Sequence[bool],
        committed: CommittedVersions,
    ) -> None:
        self._block_number = block_number
        self._context = context
        self._rules = rules
        self._verdicts = verdicts
        self._committed = committed
        self._pending = BlockWrites()
        self._tx_ids: set[str] = set()
        self._metadata_in_flux: set[MetadataKey] = set()
        self.new_config: ChannelConfig | None = None

    def judge(self, position: int, plan: _Plan) -> TxValidationCode:
        code = self._rules_before_mvcc(plan)
        if code is None and plan.tx_id in self._tx_ids:
            code = transaction_pb2.DUPLICATE_TXID
        if code is not None:
            return code
        self._tx_ids.add(plan.tx_id)
        if plan.endorser is None:
            return _VALID
        code = validate_mvcc(
            plan.endorser,
            ledger=self._context.ledger,
            committed=self._committed,
            pending=self._pending,
        )
        if code == _VALID:
            version = Version(self._block_number, position)
            self._pending.add(plan.endorser, version, self._committed)
        return code

    def _rules_before_mvcc(self, plan: _Plan) -> TxValidationCode | None:
        if plan.early_code is not None:
            return plan.early_code
        if plan.creator_check is None or not self._verdicts[plan.creator_check]:
            return transaction_pb2.BAD_CREATOR_SIGNATURE
        if plan.late_code is not None:
            return plan.late_code
        if plan.endorser is not None:
            return self._endorsement_code(plan, plan.endorser)
        self._apply_config(plan.config_envelope)
        return None

    def _endorsement_code(self, plan: _Plan, tx: EndorserTx) -> TxValidationCode | None:
        assert plan.msps is not None
        identities = _endorsing_identities(plan.endorsers, self._verdicts, plan.msps)
        code = self._rules.check_policies(
            tx,
            identities,
            msps=plan.msps,
            metadata_in_flux=self._metadata_in_flux,
        )
        if code is None:
            self._metadata_in_flux.update(metadata_writes(tx))
        return code

    def _apply_config(self, config_envelope: bytes) -> None:
        current = self.new_config or self._context.config
        try:
            self.new_config = validate_config_envelope(current, config_envelope)
        except ConfigUpdateError as error:
            raise BlockVerificationError(
                f"block {self._block_number} carries an invalid config update: {error}",
                block_number=self._block_number,
            ) from error


def _mark_ledger_duplicates(plans: Sequence[_Plan], ledger: LedgerView) -> None:
    """DUPLICATE_TXID for tx ids a committed block holds, in one look-up.

    The rule comes before the chaincode definition rules, so it replaces their
    code; the endorsement signatures submitted meanwhile go unused.
    """
    checked = [plan for plan in plans if plan.ledger_checked]
    stored = ledger.stored_tx_ids([plan.tx_id for plan in checked]) if checked else ()
    for plan in checked:
        if plan.tx_id in stored:
            plan.late_code = transaction_pb2.DUPLICATE_TXID
            plan.endorser = None


def _endorsing_identities(
    endorsers: Sequence[tuple[Identity, int]],
    verdicts: Sequence[bool],
    msps: MomentMsps,
) -> list[Identity]:
    """Valid endorsers whose signature verified, each certificate once (Fabric's rule).

    A repeated endorser is skipped only once an earlier copy was accepted.
    """
    accepted: set[tuple[str, bytes]] = set()
    identities: list[Identity] = []
    for identity, check in endorsers:
        signer = (identity.mspid, identity.certificate.der)
        if signer in accepted or not verdicts[check]:
            continue
        try:
            msps.validate(identity)
        except IdentityError:
            continue
        accepted.add(signer)
        identities.append(identity)
    return identities


def _valid_identity(serialized: bytes, msps: MomentMsps | None) -> Identity | None:
    if msps is None:
        return None
    try:
        identity = msps.deserialize_identity(serialized)
        msps.validate(identity)
    except IdentityError:
        return None
    return identity


def _moment(timestamp_s: int | None) -> datetime | None:
    """The transaction's time, or None when it has none or it is out of range."""
    if timestamp_s is None:
        return None
    try:
        return datetime.fromtimestamp(timestamp_s, UTC)
    except (OverflowError, OSError, ValueError):
        return None
