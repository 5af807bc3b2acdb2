"""Unit tests for peer.validator: one TxValidationCode per rule, with real identities.

The hospital example gets crypto material and a channel config once per module. Each
test builds a valid endorser transaction from a `TxSpec` (client dr-lee of Hospital A,
endorsed by the peers of Hospitals A and B, reading and writing one key of chaincode
`records`), changes one field, and validates a block holding it against a dictionary
ledger; `run_tx(..., valid=True/False)` is the one helper.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

import pytest

from common.msp import SigningIdentity
from common.policies import from_string
from common.protoutil import Timestamp
from network.bench_peer import BenchNetwork
from peer.ledger.statedb import Version
from peer.lifecycle import (
    LIFECYCLE_CHAINCODE_VERSION,
    LIFECYCLE_NAMESPACE,
    ChaincodeDefinition,
    default_endorsement_policy,
    definition_writes,
)
from peer.simulator import RwSetBuilder
from peer.validator import (
    HashedKey,
    PendingVerdicts,
    SerialVerifier,
    SignatureCheck,
    ValidationContext,
    evaluate_block,
    validate_block,
    verify_serially,
)
from protos.common import common_pb2
from protos.ledger.rwset import rwset_pb2
from protos.ledger.rwset.kvrwset import kv_rwset_pb2
from protos.peer import (
    chaincode_event_pb2,
    chaincode_pb2,
    collection_pb2,
    proposal_pb2,
    proposal_response_pb2,
    transaction_pb2,
)

CHANNEL = "medical-records"
CHAINCODE = "records"
ASSET_VERSION = Version(4, 0)
TxCode = transaction_pb2.TxValidationCode

# --- the network and a dictionary ledger -------------------------------------------


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> BenchNetwork:
    return BenchNetwork.create(tmp_path_factory.mktemp("validator"))


@pytest.fixture(scope="module")
def ids(network: BenchNetwork) -> dict[str, SigningIdentity]:
    return {
        "client": network.identity("HospitalAMSP", "dr-lee"),
        "admin": network.identity("HospitalAMSP", "Admin"),
        "peerA": network.identity("HospitalAMSP", "peer0"),
        "peerB": network.identity("HospitalBMSP", "peer0"),
        "peerC": network.identity("HospitalCMSP", "peer0"),
        "orderer": network.orderer,
    }


def records_definition() -> ChaincodeDefinition:
    package = collection_pb2.CollectionConfigPackage()
    for name, policy in (("diagnoses", "OR('HospitalAMSP.peer')"), ("notes", None)):
        static = package.config.add().static_collection_config
        static.name = name
        static.member_orgs_policy.signature_policy.CopyFrom(
            from_string("OR('HospitalAMSP.member', 'HospitalBMSP.member')")
        )
        if policy is not None:
            static.endorsement_policy.signature_policy.CopyFrom(from_string(policy))
    return ChaincodeDefinition(
        name=CHAINCODE,
        version="1.0",
        sequence=1,
        endorsement_policy=default_endorsement_policy(),
        collections=package.SerializeToString(),
    )


@dataclass
class FakeLedger:
    """Committed state as dictionaries; every method of `LedgerView`."""

    tx_ids: set[str] = field(default_factory=set)
    definitions: dict[str, ChaincodeDefinition] = field(
        default_factory=lambda: {CHAINCODE: records_definition()}
    )
    state: dict[tuple[str, str], tuple[Version, dict[str, bytes]]] = field(
        default_factory=lambda: {
            (CHAINCODE, "asset1"): (ASSET_VERSION, {}),
            (CHAINCODE, "asset2"): (Version(4, 1), {}),
        }
    )
    hashed: dict[HashedKey, tuple[Version, dict[str, bytes]]] = field(
        default_factory=dict
    )

    def stored_tx_ids(self, tx_ids: Collection[str]) -> Collection[str]:
        return {tx_id for tx_id in tx_ids if tx_id in self.tx_ids}

    def chaincode_definition(self, name: str) -> ChaincodeDefinition | None:
        return self.definitions.get(name)

    def versions(
        self, keys: Collection[tuple[str, str]]
    ) -> Mapping[tuple[str, str], Version]:
        return {key: self.state[key][0] for key in keys if key in self.state}

    def range_versions(
        self, ns: str, start_key: str, end_key: str
    ) -> Iterator[tuple[str, Version]]:
        for (space, key), (version, _) in sorted(self.state.items()):
            if space == ns and key >= start_key and (not end_key or key < end_key):
                yield key, version

    def metadata(self, ns: str, key: str) -> Mapping[str, bytes] | None:
        entry = self.state.get((ns, key))
        return None if entry is None else entry[1]

    def metadata_of(
        self, keys: Collection[tuple[str, str]]
    ) -> Mapping[tuple[str, str], Mapping[str, bytes]]:
        return {
            key: self.state[key][1] for key in keys if self.state.get(key, (0, {}))[1]
        }

    def hashed_versions(
        self, keys: Collection[HashedKey]
    ) -> Mapping[HashedKey, Version]:
        return {key: self.hashed[key][0] for key in keys if key in self.hashed}

    def hashed_metadata(
        self, ns: str, coll: str, key_hash: bytes
    ) -> Mapping[str, bytes] | None:
        entry = self.hashed.get((ns, coll, key_hash))
        return None if entry is None else entry[1]


# --- building transactions ------------------------------------------------------------


def rwset(
    *,
    reads: Mapping[str, Version | None] | None = None,
    writes: Mapping[str, bytes] | None = None,
    ns: str = CHAINCODE,
) -> bytes:
    builder = RwSetBuilder()
    for key, version in (
        reads if reads is not None else {"asset1": ASSET_VERSION}
    ).items():
        builder.add_read(ns, key, version)
    for key, value in (writes if writes is not None else {"asset1": b"v2"}).items():
        builder.add_write(ns, key, value)
    return builder.build()[0]


_NONCES = itertools.count()


@dataclass(frozen=True, kw_only=True)
class TxSpec:
    """Every field of an endorser transaction a test may change; defaults are valid."""

    creator: str = "client"
    signer: str | None = None
    endorsers: tuple[str, ...] = ("peerA", "peerB")
    chaincode: str = CHAINCODE
    response_chaincode: str | None = None
    version: str = "1.0"
    channel_id: str = CHANNEL
    header_type: int = common_pb2.ENDORSER_TRANSACTION
    epoch: int = 0
    nonce: bytes | None = None
    tx_id: str | None = None
    # None: the time the transaction is built. The certificates are issued (backdated by
    # cryptogen's clock skew) when the module's network fixture runs, which in a long
    # test session can be minutes after this module was imported.
    timestamp_s: int | None = None
    rwset: bytes = field(default_factory=rwset)
    events: bytes = b""
    proposal_hash: bytes | None = None
    endorsement_signature: bytes | None = None
    envelope_signature: bytes | None = None
    payload: bytes | None = None
    raw_envelope: bytes | None = None


def build(spec: TxSpec, ids: Mapping[str, SigningIdentity]) -> bytes:
    """The marshaled Envelope `spec` describes, signed by the identities it names."""
    if spec.raw_envelope is not None:
        return spec.raw_envelope
    creator = ids[spec.creator]
    nonce = next(_NONCES).to_bytes(24, "big") if spec.nonce is None else spec.nonce
    tx_id = spec.tx_id or hashlib.sha256(nonce + creator.serialized).hexdigest()
    channel_header = common_pb2.ChannelHeader(
        type=spec.header_type,
        channel_id=spec.channel_id,
        tx_id=tx_id,
        epoch=spec.epoch,
        extension=proposal_pb2.ChaincodeHeaderExtension(
            chaincode_id=chaincode_pb2.ChaincodeID(name=spec.chaincode)
        ).SerializeToString(),
    )
    channel_header.timestamp.seconds = (
        Timestamp.now().seconds if spec.timestamp_s is None else spec.timestamp_s
    )
    header = channel_header.SerializeToString()
    signature_header = common_pb2.SignatureHeader(
        creator=creator.serialized, nonce=nonce
    ).SerializeToString()
    proposal_payload = proposal_pb2.ChaincodeProposalPayload(
        input=b"\x0a\x02\x08\x02"
    ).SerializeToString()
    response_payload = proposal_response_pb2.ProposalResponsePayload(
        proposal_hash=spec.proposal_hash
        or hashlib.sha256(header + signature_header + proposal_payload).digest(),
        extension=proposal_pb2.ChaincodeAction(
            results=spec.rwset,
            events=spec.events,
            response=proposal_response_pb2.Response(status=200),
            chaincode_id=chaincode_pb2.ChaincodeID(
                name=spec.response_chaincode or spec.chaincode, version=spec.version
            ),
        ).SerializeToString(),
    ).SerializeToString()
    endorsements = [
        proposal_response_pb2.Endorsement(
            endorser=ids[name].serialized,
            signature=ids[name].sign(response_payload + ids[name].serialized),
        )
        for name in spec.endorsers
    ]
    if spec.endorsement_signature is not None:
        endorsements[0].signature = spec.endorsement_signature
    action_payload = transaction_pb2.ChaincodeActionPayload(
        chaincode_proposal_payload=proposal_payload,
        action=transaction_pb2.ChaincodeEndorsedAction(
            proposal_response_payload=response_payload, endorsements=endorsements
        ),
    )
    transaction = transaction_pb2.Transaction(
        actions=[
            transaction_pb2.TransactionAction(
                header=signature_header, payload=action_payload.SerializeToString()
            )
        ]
    )
    payload = spec.payload
    if payload is None:
        payload = common_pb2.Payload(
            header=common_pb2.Header(
                channel_header=header, signature_header=signature_header
            ),
            data=transaction.SerializeToString(),
        ).SerializeToString()
    signature = spec.envelope_signature or ids[spec.signer or spec.creator].sign(
        payload
    )
    return common_pb2.Envelope(payload=payload, signature=signature).SerializeToString()


def tx_id_of(envelope: bytes) -> str:
    payload = common_pb2.Payload.FromString(
        common_pb2.Envelope.FromString(envelope).payload
    )
    return common_pb2.ChannelHeader.FromString(payload.header.channel_header).tx_id


def context_for(network: BenchNetwork, ledger: FakeLedger) -> ValidationContext:
    from common.channelconfig import ChannelConfig

    return ValidationContext(
        config=ChannelConfig.from_block(network.genesis),
        ledger=ledger,
        verify=SerialVerifier(),
    )


@dataclass
class RecordingVerifier:
    """Verifies serially, recording the size of each batch submitted."""

    batches: list[int] = field(default_factory=list)

    def submit(self, checks: Sequence[SignatureCheck]) -> PendingVerdicts:
        self.batches.append(len(checks))
        verdicts = verify_serially(checks)
        return lambda: verdicts


def block_of(*envelopes: bytes, number: int = 5) -> common_pb2.Block:
    block = common_pb2.Block()
    block.header.number = number
    block.data.data.extend(envelopes)
    return block


def codes_of(
    network: BenchNetwork, *envelopes: bytes, ledger: FakeLedger | None = None
) -> list[TxCode]:
    return validate_block(
        block_of(*envelopes), context=context_for(network, ledger or FakeLedger())
    )


def run_tx(
    network: BenchNetwork,
    ids: Mapping[str, SigningIdentity],
    spec: TxSpec,
    *,
    valid: bool,
    code: TxCode = transaction_pb2.VALID,
    ledger: FakeLedger | None = None,
) -> None:
    """Validate a one-transaction block: VALID, or exactly `code`."""
    [actual] = codes_of(network, build(spec, ids), ledger=ledger)
    expected = transaction_pb2.VALID if valid else code
    assert transaction_pb2.TxValidationCode.Name(actual) == (
        transaction_pb2.TxValidationCode.Name(expected)
    )


# --- the valid transaction and one broken rule at a time -------------------------------

BASE = TxSpec()
OTHER_KEY = b"\x30\x44" + b"\x00" * 68
_rwset_twice = rwset_pb2.TxReadWriteSet.FromString(rwset())
_rwset_twice.ns_rwset.append(_rwset_twice.ns_rwset[0])
_range = kv_rwset_pb2.KVRWSet(
    range_queries_info=[
        kv_rwset_pb2.RangeQueryInfo(
            start_key="asset",
            end_key="asset9",
            itr_exhausted=True,
            raw_reads=kv_rwset_pb2.QueryReads(
                kv_reads=[
                    kv_rwset_pb2.KVRead(
                        key="asset1", version=kv_rwset_pb2.Version(block_num=4)
                    )
                ]
            ),
        )
    ],
    writes=[kv_rwset_pb2.KVWrite(key="asset1", value=b"v2")],
)
PHANTOM_RWSET = rwset_pb2.TxReadWriteSet(
    ns_rwset=[
        rwset_pb2.NsReadWriteSet(namespace=CHAINCODE, rwset=_range.SerializeToString())
    ]
).SerializeToString()

INVALID_CASES = {
    "envelope does not decode": (
        {"raw_envelope": b"\xff\xff"},
        transaction_pb2.INVALID_OTHER_REASON,
    ),
    "payload does not decode": ({"payload": b"\xff\xff"}, transaction_pb2.BAD_PAYLOAD),
    "epoch is not zero": ({"epoch": 1}, transaction_pb2.BAD_COMMON_HEADER),
    "nonce is empty": ({"nonce": b""}, transaction_pb2.BAD_COMMON_HEADER),
    "header type is not accepted": (
        {"header_type": common_pb2.MESSAGE},
        transaction_pb2.BAD_COMMON_HEADER,
    ),
    "envelope signature is wrong": (
        {"envelope_signature": b"\x30\x06\x02\x01\x01\x02\x01\x01"},
        transaction_pb2.BAD_CREATOR_SIGNATURE,
    ),
    "someone else signed the envelope": (
        {"signer": "peerC"},
        transaction_pb2.BAD_CREATOR_SIGNATURE,
    ),
    "tx id is not sha256(nonce ‖ creator)": (
        {"tx_id": "0" * 64},
        transaction_pb2.BAD_PROPOSAL_TXID,
    ),
    "proposal hash does not match": (
        {"proposal_hash": b"\x00" * 32},
        transaction_pb2.INVALID_ENDORSER_TRANSACTION,
    ),
    "config update in a block": (
        {"header_type": common_pb2.CONFIG_UPDATE},
        transaction_pb2.UNSUPPORTED_TX_PAYLOAD,
    ),
    "another channel": (
        {"channel_id": "other-channel"},
        transaction_pb2.TARGET_CHAIN_NOT_FOUND,
    ),
    "rwset does not decode": ({"rwset": b"\xff\xff"}, transaction_pb2.BAD_RWSET),
    "chaincode event of another chaincode": (
        {
            "events": chaincode_event_pb2.ChaincodeEvent(
                chaincode_id="other", event_name="e"
            ).SerializeToString()
        },
        transaction_pb2.INVALID_OTHER_REASON,
    ),
    "response names another chaincode": (
        {"response_chaincode": "other"},
        transaction_pb2.INVALID_CHAINCODE,
    ),
    "response has no version": ({"version": ""}, transaction_pb2.INVALID_CHAINCODE),
    "namespace twice in the rwset": (
        {"rwset": _rwset_twice.SerializeToString()},
        transaction_pb2.ILLEGAL_WRITESET,
    ),
    "chaincode is not defined": (
        {"chaincode": "unknown", "rwset": rwset(ns="unknown", reads={})},
        transaction_pb2.INVALID_CHAINCODE,
    ),
    "writes to an undefined namespace": (
        {"rwset": rwset(ns="unknown", reads={})},
        transaction_pb2.INVALID_CHAINCODE,
    ),
    "endorsed for an older version": (
        {"version": "0.9"},
        transaction_pb2.EXPIRED_CHAINCODE,
    ),
    "one endorsement of the two MAJORITY needs": (
        {"endorsers": ("peerA",)},
        transaction_pb2.ENDORSEMENT_POLICY_FAILURE,
    ),
    "the same peer endorses twice": (
        {"endorsers": ("peerA", "peerA")},
        transaction_pb2.ENDORSEMENT_POLICY_FAILURE,
    ),
    "a client is no endorsing peer": (
        {"endorsers": ("peerA", "client")},
        transaction_pb2.ENDORSEMENT_POLICY_FAILURE,
    ),
    "an endorsement signature is wrong": (
        {"endorsement_signature": b"\x30\x06\x02\x01\x01\x02\x01\x01"},
        transaction_pb2.ENDORSEMENT_POLICY_FAILURE,
    ),
    "read version is stale": (
        {"rwset": rwset(reads={"asset1": Version(3, 0)})},
        transaction_pb2.MVCC_READ_CONFLICT,
    ),
    "read a key as absent that exists": (
        {"rwset": rwset(reads={"asset1": None})},
        transaction_pb2.MVCC_READ_CONFLICT,
    ),
    "range query missed a key": (
        {"rwset": PHANTOM_RWSET},
        transaction_pb2.PHANTOM_READ_CONFLICT,
    ),
}


def test_the_base_transaction_is_valid(
    network: BenchNetwork, ids: dict[str, SigningIdentity]
) -> None:
    """Goal: the unchanged spec is VALID, so each case below fails for its one change."""
    run_tx(network, ids, BASE, valid=True)


@pytest.mark.parametrize(
    ("changes", "code"), INVALID_CASES.values(), ids=list(INVALID_CASES)
)
def test_one_broken_rule_gives_its_code(
    network: BenchNetwork,
    ids: dict[str, SigningIdentity],
    changes: dict[str, object],
    code: TxCode,
) -> None:
    """Goal: each rule's code. Method: change one field of the valid transaction."""
    run_tx(network, ids, replace(BASE, **changes), valid=False, code=code)  # type: ignore[arg-type]


def test_an_unknown_creator_msp_is_a_bad_creator_signature(
    network: BenchNetwork, ids: dict[str, SigningIdentity]
) -> None:
    """Goal: a creator the channel's MSPs do not know fails at the signature rule."""
    forged = _with_creator(build(BASE, ids), b"\x0a\x0bStrangerMSP\x12\x03pem")
    assert codes_of(network, forged) == [transaction_pb2.BAD_CREATOR_SIGNATURE]


def _with_creator(envelope: bytes, creator: bytes) -> bytes:
    message = common_pb2.Envelope.FromString(envelope)
    payload = common_pb2.Payload.FromString(message.payload)
    header = common_pb2.SignatureHeader.FromString(payload.header.signature_header)
    header.creator = creator
    payload.header.signature_header = header.SerializeToString()
    message.payload = payload.SerializeToString()
    return message.SerializeToString()


def test_rules_apply_in_fabric_order(
    network: BenchNetwork, ids: dict[str, SigningIdentity]
) -> None:
    """Goal: the first broken rule wins. Method: break two rules at once."""
    both = replace(BASE, tx_id="0" * 64, envelope_signature=b"\x30\x00")
    run_tx(network, ids, both, valid=False, code=transaction_pb2.BAD_CREATOR_SIGNATURE)
    late = replace(BASE, endorsers=("peerA",), rwset=rwset(reads={"asset1": None}))
    run_tx(
        network, ids, late, valid=False, code=transaction_pb2.ENDORSEMENT_POLICY_FAILURE
    )


def test_a_tx_id_already_in_the_ledger_is_a_duplicate(
    network: BenchNetwork, ids: dict[str, SigningIdentity]
) -> None:
    envelope = build(BASE, ids)
    ledger = FakeLedger(tx_ids={tx_id_of(envelope)})
    assert codes_of(network, envelope, ledger=ledger) == [
        transaction_pb2.DUPLICATE_TXID
    ]


def test_a_stored_tx_id_is_a_duplicate_before_its_chaincode_is_judged(
    network: BenchNetwork, ids: dict[str, SigningIdentity]
) -> None:
    """The ledger look-up happens after the first pass, yet its rule still comes
    before the chaincode definition rules."""
    envelope = build(BASE, ids)
    ledger = FakeLedger(tx_ids={tx_id_of(envelope)}, definitions={})
    assert codes_of(network, envelope, ledger=ledger) == [
        transaction_pb2.DUPLICATE_TXID
    ]


def test_a_tx_id_repeated_in_the_block_is_a_duplicate(
    network: BenchNetwork, ids: dict[str, SigningIdentity]
) -> None:
    """Goal: the second copy is DUPLICATE_TXID and skips MVCC; the first stays VALID."""
    envelope = build(replace(BASE, rwset=rwset(reads={})), ids)
    assert codes_of(network, envelope, envelope) == [
        transaction_pb2.VALID,
        transaction_pb2.DUPLICATE_TXID,
    ]


def _policy_metadata_rwset(policy: str) -> bytes:
    builder = RwSetBuilder()
    builder.add_metadata_write(
        CHAINCODE,
        "asset1",
        {"VALIDATION_PARAMETER": from_string(policy).SerializeToString()},
    )
    return builder.build()[0]


# (first transaction, second transaction, their codes in a block of the two)
TWO_TX_CASES = {
    "an invalid first copy does not make the second a duplicate": (
        replace(BASE, nonce=b"\x07" * 24, endorsers=("peerA",)),
        replace(BASE, nonce=b"\x07" * 24),
        [transaction_pb2.ENDORSEMENT_POLICY_FAILURE, transaction_pb2.VALID],
    ),
    "a read of a key written earlier in the block conflicts": (
        BASE,
        BASE,
        [transaction_pb2.VALID, transaction_pb2.MVCC_READ_CONFLICT],
    ),
    "an invalid writer does not conflict later reads": (
        replace(BASE, endorsers=("peerC",)),
        BASE,
        [transaction_pb2.ENDORSEMENT_POLICY_FAILURE, transaction_pb2.VALID],
    ),
    # Once a valid earlier transaction rewrote a key's metadata, later writers of that
    # key in the block fail, as in Fabric.
    "a key-level policy in flux fails later writers": (
        replace(BASE, rwset=_policy_metadata_rwset("OR('HospitalAMSP.peer')")),
        replace(BASE, rwset=rwset(reads={})),
        [transaction_pb2.VALID, transaction_pb2.ENDORSEMENT_POLICY_FAILURE],
    ),
}


@pytest.mark.parametrize(
    ("first", "second", "codes"), TWO_TX_CASES.values(), ids=list(TWO_TX_CASES)
)
def test_an_earlier_transaction_in_the_block_bears_on_a_later_one(
    network: BenchNetwork,
    ids: dict[str, SigningIdentity],
    first: TxSpec,
    second: TxSpec,
    codes: list[TxCode],
) -> None:
    """Goal: what the first transaction's verdict and writes do to the second's."""
    assert codes_of(network, build(first, ids), build(second, ids)) == codes


def test_certificates_are_judged_at_the_transaction_time(
    network: BenchNetwork, ids: dict[str, SigningIdentity]
) -> None:
    """Goal: validity at the tx's own timestamp. Method: a time before the CAs existed."""
    before = replace(BASE, timestamp_s=Timestamp.now().seconds - 3 * 365 * 24 * 3600)
    run_tx(
        network, ids, before, valid=False, code=transaction_pb2.BAD_CREATOR_SIGNATURE
    )


# --- _lifecycle, collections, key-level policies ---------------------------------------


def definition_tx(endorsers: tuple[str, ...]) -> TxSpec:
    builder = RwSetBuilder()
    definition = replace(records_definition(), name="billing")
    for key, value in definition_writes(definition):
        builder.add_write(LIFECYCLE_NAMESPACE, key, value)
    return replace(
        BASE,
        creator="admin",
        chaincode=LIFECYCLE_NAMESPACE,
        version=LIFECYCLE_CHAINCODE_VERSION,
        endorsers=endorsers,
        rwset=builder.build()[0],
    )


@pytest.mark.parametrize(
    ("endorsers", "valid"), [(("peerA", "peerC"), True), (("peerB",), False)]
)
def test_lifecycle_writes_need_lifecycle_endorsement(
    network: BenchNetwork,
    ids: dict[str, SigningIdentity],
    endorsers: tuple[str, ...],
    valid: bool,
) -> None:
    """Goal: `_lifecycle` is always defined and endorsed by MAJORITY Endorsement."""
    run_tx(
        network,
        ids,
        definition_tx(endorsers),
        valid=valid,
        code=transaction_pb2.ENDORSEMENT_POLICY_FAILURE,
    )


def private_rwset(coll: str, *, with_public_write: bool = False) -> bytes:
    builder = RwSetBuilder()
    builder.add_private_write(CHAINCODE, coll, "patient-17", b"diagnosis")
    if with_public_write:
        builder.add_write(CHAINCODE, "asset1", b"v2")
    return builder.build()[0]


@pytest.mark.parametrize(
    ("coll", "endorsers", "valid"),
    [
        ("diagnoses", ("peerA",), True),
        ("diagnoses", ("peerB", "peerC"), False),
        ("notes", ("peerB", "peerC"), True),
        ("notes", ("peerA",), False),
        ("_implicit_org_HospitalBMSP", ("peerB",), True),
        ("_implicit_org_HospitalBMSP", ("peerA",), False),
        ("undefined", ("peerA", "peerB", "peerC"), False),
    ],
)
def test_private_writes_need_the_collection_policy(
    network: BenchNetwork,
    ids: dict[str, SigningIdentity],
    coll: str,
    endorsers: tuple[str, ...],
    valid: bool,
) -> None:
    """Goal: a collection's own policy, the chaincode's without one, org policies for
    implicit collections; an undefined collection fails."""
    spec = replace(BASE, rwset=private_rwset(coll), endorsers=endorsers)
    run_tx(
        network, ids, spec, valid=valid, code=transaction_pb2.ENDORSEMENT_POLICY_FAILURE
    )


def test_a_public_write_next_to_a_private_one_also_needs_the_chaincode_policy(
    network: BenchNetwork, ids: dict[str, SigningIdentity]
) -> None:
    spec = replace(
        BASE,
        rwset=private_rwset("diagnoses", with_public_write=True),
        endorsers=("peerA",),
    )
    run_tx(
        network, ids, spec, valid=False, code=transaction_pb2.ENDORSEMENT_POLICY_FAILURE
    )


def key_policy_ledger(policy: str) -> FakeLedger:
    parameter = from_string(policy).SerializeToString()
    ledger = FakeLedger()
    ledger.state[(CHAINCODE, "asset1")] = (
        ASSET_VERSION,
        {"VALIDATION_PARAMETER": parameter},
    )
    return ledger


@pytest.mark.parametrize(
    ("endorsers", "valid"), [(("peerC",), True), (("peerA", "peerB"), False)]
)
def test_a_key_level_policy_replaces_the_chaincode_policy(
    network: BenchNetwork,
    ids: dict[str, SigningIdentity],
    endorsers: tuple[str, ...],
    valid: bool,
) -> None:
    """Goal: a key with VALIDATION_PARAMETER needs that policy (and only it)."""
    run_tx(
        network,
        ids,
        replace(BASE, endorsers=endorsers),
        valid=valid,
        code=transaction_pb2.ENDORSEMENT_POLICY_FAILURE,
        ledger=key_policy_ledger("OR('HospitalCMSP.peer')"),
    )


def test_an_invalid_config_transaction_refuses_the_block(
    network: BenchNetwork, ids: dict[str, SigningIdentity]
) -> None:
    """Goal: a CONFIG transaction that is no valid update refuses the whole block."""
    from peer.errors import BlockVerificationError

    config_tx = build(
        replace(BASE, header_type=common_pb2.CONFIG, creator="orderer"), ids
    )
    with pytest.raises(BlockVerificationError, match="invalid config update"):
        evaluate_block(block_of(config_tx), context=context_for(network, FakeLedger()))


def test_every_signature_goes_to_the_verifier_in_one_batch(
    network: BenchNetwork, ids: dict[str, SigningIdentity]
) -> None:
    """Goal: a small block's creator and endorsement signatures go to the verifier in one
    batch (large blocks are submitted in parts while the rest is decoded)."""
    recording = RecordingVerifier()
    context = replace(context_for(network, FakeLedger()), verify=recording)
    envelopes = [build(BASE, ids) for _ in range(3)]
    codes = validate_block(block_of(*envelopes), context=context)
    assert recording.batches == [9]
    assert codes == [transaction_pb2.VALID] + [transaction_pb2.MVCC_READ_CONFLICT] * 2


def test_an_endorser_counts_once_however_often_it_signs(
    network: BenchNetwork, ids: dict[str, SigningIdentity]
) -> None:
    """Goal: Fabric's de-duplication of signers. Method: a policy needing two signatures
    of Hospital C peers, endorsed twice by the same peer."""
    run_tx(
        network,
        ids,
        replace(BASE, endorsers=("peerC", "peerC")),
        valid=False,
        code=transaction_pb2.ENDORSEMENT_POLICY_FAILURE,
        ledger=key_policy_ledger("AND('HospitalCMSP.peer', 'HospitalCMSP.peer')"),
    )


def test_a_large_block_is_submitted_in_parts(
    network: BenchNetwork, ids: dict[str, SigningIdentity]
) -> None:
    """Goal: the verifier can work on one part of a block while the rest is decoded, and
    verdicts still reach the right transactions. Method: 100 transactions, every 10th
    with a bad endorsement, through a verifier that records batch sizes."""
    from peer.validator.block import SUBMIT_CHECKS

    envelopes = [
        build(
            replace(
                BASE,
                rwset=rwset(reads={}, writes={f"k{index}": b"v"}),
                endorsement_signature=b"\x30\x00" if index % 10 == 0 else None,
            ),
            ids,
        )
        for index in range(100)
    ]
    recording = RecordingVerifier()
    context = replace(context_for(network, FakeLedger()), verify=recording)
    codes = validate_block(block_of(*envelopes), context=context)
    batches = recording.batches
    assert len(batches) > 1
    assert all(size >= SUBMIT_CHECKS for size in batches[:-1])
    assert sum(batches) == 300
    assert codes == [
        transaction_pb2.ENDORSEMENT_POLICY_FAILURE
        if index % 10 == 0
        else transaction_pb2.VALID
        for index in range(100)
    ]


@pytest.mark.parametrize(
    ("endorsers", "valid"), [(("peerC",), True), (("peerA", "peerB"), False)]
)
def test_a_private_key_level_policy_replaces_the_collection_policy(
    network: BenchNetwork,
    ids: dict[str, SigningIdentity],
    endorsers: tuple[str, ...],
    valid: bool,
) -> None:
    """Goal: VALIDATION_PARAMETER in a private key's hashed metadata governs its writes."""
    ledger = FakeLedger()
    parameter = from_string("OR('HospitalCMSP.peer')").SerializeToString()
    key = (CHAINCODE, "notes", hashlib.sha256(b"patient-17").digest())
    ledger.hashed[key] = (Version(4, 2), {"VALIDATION_PARAMETER": parameter})
    run_tx(
        network,
        ids,
        replace(BASE, rwset=private_rwset("notes"), endorsers=endorsers),
        valid=valid,
        code=transaction_pb2.ENDORSEMENT_POLICY_FAILURE,
        ledger=ledger,
    )
