"""protoutil: assembling, signing and parsing endorser-transaction envelopes.

The assembled payload is compared with a golden vector that the official Fabric Gateway
Node client accepted, and every layer is parsed back and compared with what went in.
"""

from __future__ import annotations

import hashlib

import pytest

from common import protoutil as pu
from common.crypto import PrivateKey, verify_signature
from common.errors import ProposalResponseMismatch, WireError
from protos.common import common_pb2
from protos.peer import proposal_response_pb2, transaction_pb2
from tests.unit.common.protoutil_vectors import CREATOR, fake_signer, load_vector

PEER1 = pu.serialize_identity("Org1MSP", b"peer0.org1")
PEER2 = pu.serialize_identity("Org2MSP", b"peer0.org2")
RESULT = b'{"ID":"asset1"}'


def proposal(transient: dict[str, bytes] | None = None) -> pu.ParsedProposal:
    created = pu.create_proposal(
        channel_id="mychannel",
        chaincode_name="records",
        args=[b"CreateRecord", b"patient-1"],
        creator=CREATOR,
        transient=transient if transient is not None else {"diagnosis": b"secret"},
        nonce=bytes(24),
        timestamp=pu.Timestamp(1_700_000_000),
    )
    return pu.parse_proposal(created.proposal_bytes)


def endorse(
    parsed: pu.ParsedProposal,
    *,
    endorser: bytes,
    payload: bytes = RESULT,
    status: int = 200,
    results: bytes = b"",
) -> proposal_response_pb2.ProposalResponse:
    return pu.create_proposal_response(
        proposal_hash=pu.proposal_hash_of(parsed),
        results=results,
        response=pu.ChaincodeResponse(status=status, payload=payload),
        chaincode_id=pu.ChaincodeId("records", "1.0"),
        endorser=endorser,
        signer=fake_signer(endorser),
    )


def test_transaction_payload_matches_the_vector_the_node_client_accepted() -> None:
    """Rebuilding the vector's transaction gives its bytes, which the client read."""
    client = load_vector("protoutil_node_client.json")
    vector = load_vector("protoutil_transaction.json")
    parsed = pu.parse_signed_proposal(bytes.fromhex(client["signed_proposal"]))
    response = vector["response"]
    responses = [
        pu.create_proposal_response(
            proposal_hash=pu.proposal_hash_of(parsed),
            results=bytes.fromhex(vector["results"]),
            response=pu.ChaincodeResponse(
                response["status"], response["message"], response["payload"].encode()
            ),
            chaincode_id=pu.ChaincodeId(**vector["chaincode_id"]),
            endorser=pu.serialize_identity(item["mspid"], item["id_bytes"].encode()),
            signer=fake_signer(item["hmac_key"].encode()),
        )
        for item in vector["endorsers"]
    ]
    payload = pu.create_transaction_envelope(proposal=parsed, responses=responses)
    assert pu.proposal_hash_of(parsed).hex() == vector["proposal_hash"]
    assert payload.hex() == vector["payload"]
    assert hashlib.sha256(payload).hexdigest() == vector["payload_sha256"]
    signed = pu.parse_transaction(bytes.fromhex(vector["node_signed_envelope"]))
    assert signed.envelope.payload_bytes == payload
    assert signed.tx_id == vector["node_transaction_id"] == client["transaction_id"]
    assert signed.response.payload.decode() == vector["node_result"]


def test_envelope_with_two_endorsements_parses_back_layer_by_layer() -> None:
    parsed = proposal()
    results = bytes.fromhex(load_vector("protoutil_transaction.json")["results"])
    responses = [
        endorse(parsed, endorser=peer, results=results) for peer in (PEER1, PEER2)
    ]
    payload = pu.create_transaction_envelope(
        proposal=parsed.proposal_bytes, responses=responses
    )
    envelope = pu.sign_envelope(payload, fake_signer(CREATOR))
    tx = pu.parse_transaction(envelope.SerializeToString())

    assert tx.envelope.payload_bytes == payload
    assert tx.envelope.signature == fake_signer(CREATOR)(payload)
    assert pu.envelope_signed_data(tx.envelope) == pu.SignedData(
        payload, CREATOR, envelope.signature
    )
    assert common_pb2.Payload.FromString(payload).header.SerializeToString() == (
        parsed.header_bytes
    )
    assert tx.channel_header == parsed.channel_header
    assert tx.signature_header == parsed.signature_header
    assert tx.action_header.raw == parsed.signature_header.raw
    assert tx.chaincode_proposal_payload == parsed.transient_free_payload
    assert tx.proposal_response_payload.raw == responses[0].payload
    assert tx.endorsements == (
        pu.Endorsement(PEER1, responses[0].endorsement.signature),
        pu.Endorsement(PEER2, responses[1].endorsement.signature),
    )
    assert (tx.tx_id, tx.channel_id, tx.creator) == (parsed.tx_id, "mychannel", CREATOR)
    assert tx.chaincode_action.chaincode_id == pu.ChaincodeId("records", "1.0")
    assert tx.response.payload == RESULT
    assert [ns.namespace for ns in tx.rwset.ns_rwsets] == ["_lifecycle", "basic"]
    assert pu.transaction_proposal_hash(tx) == pu.proposal_hash_of(parsed)
    assert tx.proposal_response_payload.proposal_hash == pu.proposal_hash_of(parsed)


def test_transaction_carries_no_transient_data() -> None:
    secret = b"only-for-the-endorsers"
    parsed = proposal(transient={"diagnosis": secret})
    payload = pu.create_transaction_envelope(
        proposal=parsed, responses=[endorse(parsed, endorser=PEER1)]
    )
    assert secret not in payload


def test_endorsement_signed_data_covers_payload_and_endorser() -> None:
    parsed = proposal()
    responses = [endorse(parsed, endorser=peer) for peer in (PEER1, PEER2)]
    payload = pu.create_transaction_envelope(proposal=parsed, responses=responses)
    tx = pu.parse_transaction(common_pb2.Envelope(payload=payload))
    checks = pu.transaction_endorsements_signed_data(tx)
    assert [check.identity for check in checks] == [PEER1, PEER2]
    for check in checks:
        assert check.message == responses[0].payload + check.identity
        assert check.signature == fake_signer(check.identity)(check.message)


def test_mismatched_payloads_are_rejected() -> None:
    parsed = proposal()
    responses = [
        endorse(parsed, endorser=PEER1),
        endorse(parsed, endorser=PEER2, payload=b"x"),
    ]
    with pytest.raises(ProposalResponseMismatch, match="response 1"):
        pu.create_transaction_envelope(proposal=parsed, responses=responses)


@pytest.mark.parametrize("status", [0, 199, 400, 404, 500])
def test_unsuccessful_responses_are_rejected(status: int) -> None:
    parsed = proposal()
    responses = [endorse(parsed, endorser=PEER1, status=status)]
    with pytest.raises(WireError, match=f"status {status}"):
        pu.create_transaction_envelope(proposal=parsed, responses=responses)


def test_status_below_400_is_accepted() -> None:
    parsed = proposal()
    responses = [endorse(parsed, endorser=PEER1, status=399)]
    payload = pu.create_transaction_envelope(proposal=parsed, responses=responses)
    assert (
        pu.parse_transaction(common_pb2.Envelope(payload=payload)).response.status
        == 399
    )


def test_no_responses_or_no_endorsement_are_rejected() -> None:
    parsed = proposal()
    with pytest.raises(WireError, match="at least one"):
        pu.create_transaction_envelope(proposal=parsed, responses=[])
    unendorsed = endorse(parsed, endorser=PEER1)
    unendorsed.ClearField("endorsement")
    with pytest.raises(WireError, match="no endorsement"):
        pu.create_transaction_envelope(proposal=parsed, responses=[unendorsed])


def _envelope(header_type: int, data: bytes) -> bytes:
    channel_header = pu.channel_header_bytes(header_type=header_type, channel_id="c")
    header = pu.header_bytes(
        channel_header=channel_header,
        signature_header=pu.signature_header_bytes(creator=CREATOR),
    )
    payload = pu.payload_bytes(header=header, data=data)
    return common_pb2.Envelope(payload=payload, signature=b"s").SerializeToString()


def _transaction(*actions: transaction_pb2.TransactionAction) -> bytes:
    return transaction_pb2.Transaction(actions=actions).SerializeToString()


SIGNATURE_HEADER = pu.signature_header_bytes(creator=CREATOR)
NO_ACTION = transaction_pb2.ChaincodeActionPayload().SerializeToString()


@pytest.mark.parametrize(
    ("envelope", "layer"),
    [
        (b"", "envelope.payload is missing"),
        (
            common_pb2.Envelope(payload=b"\x12\x01x").SerializeToString(),
            "header is missing",
        ),
        (_envelope(common_pb2.CONFIG, b""), "not ENDORSER_TRANSACTION"),
        (_envelope(common_pb2.ENDORSER_TRANSACTION, b"\xff"), "Transaction"),
        (_envelope(common_pb2.ENDORSER_TRANSACTION, _transaction()), "holds 0"),
        (
            _envelope(
                common_pb2.ENDORSER_TRANSACTION,
                _transaction(
                    transaction_pb2.TransactionAction(),
                    transaction_pb2.TransactionAction(),
                ),
            ),
            "holds 2",
        ),
        (
            _envelope(
                common_pb2.ENDORSER_TRANSACTION,
                _transaction(
                    transaction_pb2.TransactionAction(
                        header=SIGNATURE_HEADER, payload=NO_ACTION
                    )
                ),
            ),
            "ChaincodeEndorsedAction",
        ),
    ],
)
def test_parse_transaction_names_the_bad_layer(envelope: bytes, layer: str) -> None:
    with pytest.raises(WireError, match=layer):
        pu.parse_transaction(envelope)


def test_envelope_of_another_type_parses_as_an_envelope() -> None:
    parsed = pu.parse_envelope(_envelope(common_pb2.CONFIG, b"config"))
    assert (parsed.header_type, parsed.channel_id, parsed.data) == (
        common_pb2.CONFIG,
        "c",
        b"config",
    )
    assert parsed.creator == CREATOR


def test_real_keys_sign_and_verify_proposal_and_envelope() -> None:
    """With common.crypto keys the signatures verify over the exact signed bytes."""
    key = PrivateKey.generate()
    created = pu.create_proposal(
        channel_id="c", chaincode_name="cc", args=[b"f"], creator=CREATOR
    )
    signed = pu.sign_proposal(created.proposal_bytes, key.sign)
    data = pu.proposal_signed_data(pu.parse_signed_proposal(signed))
    key.public_key.verify(data.signature, data.message)
    envelope = pu.sign_envelope(b"payload", key.sign)
    key.public_key.verify(envelope.signature, b"payload")


def test_node_client_signature_verifies_with_common_crypto() -> None:
    vector = load_vector("protoutil_node_client.json")
    parsed = pu.parse_signed_proposal(bytes.fromhex(vector["signed_proposal"]))
    data = pu.proposal_signed_data(parsed)
    identity = pu.parse_serialized_identity(data.identity)
    verify_signature(identity.id_bytes, signature=data.signature, message=data.message)
