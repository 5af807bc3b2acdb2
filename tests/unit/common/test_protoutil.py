"""protoutil: tx ids, proposals, proposal responses and transaction envelopes.

Outcomes are checked against golden vectors built by the official Fabric Gateway Node
client (tests/vectors/protoutil_*.json) and against the hashing rules byte for byte.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from common import protoutil as pu
from common.errors import (
    MalformedIdentity,
    TxIdMismatch,
    WireError,
)
from protos.common import common_pb2
from protos.peer import (
    chaincode_pb2,
    proposal_pb2,
    proposal_response_pb2,
)
from tests.unit.common.protoutil_vectors import CREATOR, fake_signer, load_vector

NONCE = bytes(range(24))
STAMP = pu.Timestamp(seconds=1_700_000_000, nanos=123_000_000)
RESULT = b'{"ID":"asset1"}'


def make_proposal(**changes: Any) -> pu.CreatedProposal:
    arguments: dict[str, Any] = {
        "channel_id": "mychannel",
        "chaincode_name": "records",
        "args": [b"CreateRecord", b"patient-1"],
        "creator": CREATOR,
        "transient": {"diagnosis": b"secret"},
        "nonce": NONCE,
        "timestamp": STAMP,
    }
    arguments.update(changes)
    return pu.create_proposal(**arguments)


def endorse(
    proposal: pu.ParsedProposal,
    *,
    endorser: bytes,
    payload: bytes = RESULT,
    status: int = 200,
) -> proposal_response_pb2.ProposalResponse:
    return pu.create_proposal_response(
        proposal_hash=pu.proposal_hash_of(proposal),
        results=b"",
        response=pu.ChaincodeResponse(status=status, payload=payload),
        chaincode_id=pu.ChaincodeId("records", "1.0"),
        endorser=endorser,
        signer=fake_signer(endorser),
    )


def parsed_proposal(**changes: Any) -> pu.ParsedProposal:
    return pu.parse_proposal(make_proposal(**changes).proposal_bytes)


# --- tx ids and identities --------------------------------------------------------


def test_tx_id_matches_the_node_client_vector() -> None:
    """The official client's tx id is sha256(nonce ‖ creator) of its own header."""
    vector = load_vector("protoutil_node_client.json")
    proposal = pu.parse_signed_proposal(bytes.fromhex(vector["signed_proposal"]))
    assert len(proposal.nonce) == pu.NONCE_SIZE
    computed = pu.compute_tx_id(nonce=proposal.nonce, creator=proposal.creator)
    assert computed == vector["transaction_id"] == proposal.tx_id
    pu.check_tx_id(tx_id=proposal.tx_id, nonce=proposal.nonce, creator=proposal.creator)


@pytest.mark.parametrize(
    "tx_id",
    [
        pu.compute_tx_id(nonce=NONCE, creator=CREATOR).upper(),
        pu.compute_tx_id(nonce=NONCE[1:], creator=CREATOR),
        "",
    ],
)
def test_check_tx_id_rejects_any_other_id(tx_id: str) -> None:
    with pytest.raises(TxIdMismatch):
        pu.check_tx_id(tx_id=tx_id, nonce=NONCE, creator=CREATOR)


def test_serialized_identity_round_trips() -> None:
    data = pu.serialize_identity("Org2MSP", b"PEM")
    assert pu.parse_serialized_identity(data) == pu.SerializedIdentity(
        "Org2MSP", b"PEM"
    )


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xff",
        pu.serialize_identity("", b"PEM"),
        pu.serialize_identity("Org1MSP", b""),
    ],
)
def test_parse_serialized_identity_rejects_malformed(data: bytes) -> None:
    with pytest.raises(MalformedIdentity):
        pu.parse_serialized_identity(data)


def test_new_nonce_is_fresh_and_sized() -> None:
    assert len(pu.new_nonce()) == pu.NONCE_SIZE
    assert pu.new_nonce() != pu.new_nonce()


# --- proposals ----------------------------------------------------------------------


def test_create_proposal_is_byte_identical_to_the_node_client() -> None:
    """Same inputs (nonce, time, args, transient) give the client's exact bytes."""
    vector = load_vector("protoutil_node_client.json")
    theirs = pu.parse_signed_proposal(bytes.fromhex(vector["signed_proposal"]))
    request = vector["request"]
    ours = pu.create_proposal(
        channel_id=request["channel"],
        chaincode_name=request["chaincode"],
        args=[request["transactionName"].encode()]
        + [a.encode() for a in request["arguments"]],
        creator=pu.serialize_identity(vector["mspid"], vector["cert_pem"].encode()),
        transient={key: value.encode() for key, value in request["transient"].items()},
        nonce=theirs.nonce,
        timestamp=theirs.channel_header.timestamp,
    )
    assert ours.proposal_bytes == theirs.proposal_bytes
    assert ours.tx_id == vector["transaction_id"]


def test_parse_signed_proposal_unpacks_every_layer() -> None:
    created = make_proposal(is_init=True)
    signed = pu.sign_proposal(created.proposal_bytes, fake_signer(b"user"))
    parsed = pu.parse_signed_proposal(signed.SerializeToString())
    assert parsed.signature == fake_signer(b"user")(created.proposal_bytes)
    assert parsed.proposal_bytes == created.proposal_bytes
    assert (parsed.tx_id, parsed.channel_id, parsed.creator, parsed.nonce) == (
        created.tx_id,
        "mychannel",
        CREATOR,
        NONCE,
    )
    assert parsed.channel_header.type == common_pb2.ENDORSER_TRANSACTION
    assert parsed.channel_header.epoch == 0
    assert parsed.channel_header.timestamp == STAMP
    assert parsed.chaincode_id == pu.ChaincodeId("records")
    assert parsed.chaincode_type == pu.CHAINCODE_TYPE_NODE
    assert parsed.args == (b"CreateRecord", b"patient-1")
    assert parsed.is_init
    assert dict(parsed.transient_map) == {"diagnosis": b"secret"}
    assert parsed.header_bytes in created.proposal_bytes
    assert parsed.channel_header.raw in parsed.header_bytes
    assert parsed.signature_header.raw in parsed.header_bytes
    assert parsed.input_bytes in parsed.payload_bytes
    assert pu.proposal_signed_data(parsed) == pu.SignedData(
        created.proposal_bytes, CREATOR, parsed.signature
    )


def _proposal(header: bytes, payload: bytes) -> bytes:
    return proposal_pb2.Proposal(header=header, payload=payload).SerializeToString()


def _header(*, extension: bytes, signature_header: bytes = b"\n\x01c") -> bytes:
    channel_header = pu.channel_header_bytes(
        header_type=common_pb2.ENDORSER_TRANSACTION, channel_id="c", extension=extension
    )
    return pu.header_bytes(
        channel_header=channel_header, signature_header=signature_header
    )


def _extension(name: str | None) -> bytes:
    if name is None:
        return proposal_pb2.ChaincodeHeaderExtension().SerializeToString()
    chaincode_id = chaincode_pb2.ChaincodeID(name=name)
    return proposal_pb2.ChaincodeHeaderExtension(
        chaincode_id=chaincode_id
    ).SerializeToString()


def _payload(spec: chaincode_pb2.ChaincodeInvocationSpec) -> bytes:
    return proposal_pb2.ChaincodeProposalPayload(
        input=spec.SerializeToString()
    ).SerializeToString()


GOOD_HEADER = _header(extension=_extension("cc"))
GOOD_PAYLOAD = _payload(
    chaincode_pb2.ChaincodeInvocationSpec(
        chaincode_spec=chaincode_pb2.ChaincodeSpec(input=chaincode_pb2.ChaincodeInput())
    )
)


@pytest.mark.parametrize(
    ("signed_proposal", "layer"),
    [
        (proposal_pb2.SignedProposal(signature=b"s"), "proposal_bytes"),
        (b"\x0a\x02\xff\xff", "proposal"),
        (_proposal(b"", GOOD_PAYLOAD), "proposal.header is missing"),
        (_proposal(b"\x0a\x05ab", GOOD_PAYLOAD), "proposal.header"),
        (
            _proposal(pu.header_bytes(channel_header=b"", signature_header=b"x"), b""),
            "channel_header",
        ),
        (
            _proposal(_header(extension=_extension("cc"), signature_header=b""), b""),
            "signature_header",
        ),
        (
            _proposal(_header(extension=_extension(None)), GOOD_PAYLOAD),
            "no chaincode_id",
        ),
        (
            _proposal(_header(extension=_extension("")), GOOD_PAYLOAD),
            "empty chaincode name",
        ),
        (
            _proposal(_header(extension=b"\xff"), GOOD_PAYLOAD),
            "ChaincodeHeaderExtension",
        ),
        (_proposal(GOOD_HEADER, b"\x0a\x09x"), "ChaincodeProposalPayload"),
        (
            _proposal(GOOD_HEADER, _payload(chaincode_pb2.ChaincodeInvocationSpec())),
            "no chaincode_spec",
        ),
        (
            _proposal(
                GOOD_HEADER,
                _payload(
                    chaincode_pb2.ChaincodeInvocationSpec(
                        chaincode_spec=chaincode_pb2.ChaincodeSpec()
                    )
                ),
            ),
            "without input",
        ),
    ],
)
def test_parse_signed_proposal_names_the_bad_layer(
    signed_proposal: bytes | proposal_pb2.SignedProposal, layer: str
) -> None:
    """Each case breaks one layer; the WireError says which."""
    if isinstance(signed_proposal, bytes):
        signed_proposal = proposal_pb2.SignedProposal(proposal_bytes=signed_proposal)
    with pytest.raises(WireError, match=layer):
        pu.parse_signed_proposal(signed_proposal.SerializeToString())


def test_good_minimal_proposal_parses() -> None:
    """The negative cases above differ from this accepted proposal by one layer each."""
    parsed = pu.parse_proposal(_proposal(GOOD_HEADER, GOOD_PAYLOAD))
    assert parsed.chaincode_id.name == "cc"
    assert parsed.args == ()


def test_proposal_hash_ignores_the_transient_map() -> None:
    with_transient = parsed_proposal(transient={"a": b"1", "b": b"2"})
    without = parsed_proposal(transient=None)
    assert with_transient.payload_bytes != without.payload_bytes
    assert pu.proposal_hash_of(with_transient) == pu.proposal_hash_of(without)
    assert with_transient.transient_free_payload == without.payload_bytes


def test_proposal_hash_is_sha256_of_headers_and_input_only() -> None:
    parsed = parsed_proposal()
    input_only = proposal_pb2.ChaincodeProposalPayload(input=parsed.input_bytes)
    expected = hashlib.sha256(
        parsed.channel_header.raw
        + parsed.signature_header.raw
        + input_only.SerializeToString()
    ).digest()
    by_parts = pu.proposal_hash(
        channel_header=parsed.channel_header.raw,
        signature_header=parsed.signature_header.raw,
        chaincode_proposal_payload=parsed.payload_bytes,
    )
    assert by_parts == pu.proposal_hash_of(parsed) == expected
    assert pu.proposal_hash_of(parsed_proposal(args=[b"Other"])) != expected


# --- proposal responses ---------------------------------------------------------------


def test_endorsement_signs_payload_then_endorser() -> None:
    endorser = pu.serialize_identity("Org1MSP", b"peer0")
    response = endorse(parsed_proposal(), endorser=endorser)
    assert pu.endorsement_message(payload=b"P", endorser=b"E") == b"PE"
    expected = fake_signer(endorser)(response.payload + endorser)
    assert response.endorsement.signature == expected
    assert response.endorsement.endorser == endorser
    assert response.version == 1


def test_proposal_response_round_trips() -> None:
    proposal = parsed_proposal()
    response = endorse(proposal, endorser=b"peer0")
    parsed = pu.parse_proposal_response(response.SerializeToString())
    assert parsed.response == pu.ChaincodeResponse(200, "", RESULT)
    assert parsed.endorsement == pu.Endorsement(
        b"peer0", response.endorsement.signature
    )
    assert parsed.payload is not None
    assert parsed.payload.raw == response.payload
    assert parsed.payload.proposal_hash == pu.proposal_hash_of(proposal)
    action = parsed.payload.chaincode_action
    assert action.chaincode_id == pu.ChaincodeId("records", "1.0")
    assert action.response.payload == RESULT


def test_failed_proposal_response_has_no_payload() -> None:
    failed = proposal_response_pb2.ProposalResponse(
        version=1, response=proposal_response_pb2.Response(status=500, message="boom")
    )
    parsed = pu.parse_proposal_response(failed)
    assert (parsed.payload, parsed.endorsement) == (None, None)
    assert not parsed.response.is_success


@pytest.mark.parametrize("status", [0, 200, 500, -1, 2**31 - 1])
@pytest.mark.parametrize("interest", [None, b"", b"\n\x04\n\x02cc"])
@pytest.mark.parametrize("filled", [False, True])
def test_proposal_response_bytes_equal_the_built_message(
    status: int, interest: bytes | None, filled: bool
) -> None:
    """The hand-assembled response is the message Fabric's fields describe."""
    text = "é" * 90 if filled else ""
    data = b"d" * 200 if filled else b""
    response = pu.ChaincodeResponse(status, text, data)
    made = pu.create_proposal_response(
        proposal_hash=data[:32],
        results=data,
        response=response,
        chaincode_id=pu.ChaincodeId("records", text, text),
        endorser=data,
        signer=lambda _message: data[:70],
        events=data[:5],
        interest=interest,
    )
    reply = proposal_response_pb2.Response(status=status, message=text, payload=data)
    action = proposal_pb2.ChaincodeAction(
        results=data,
        events=data[:5],
        response=reply,
        chaincode_id=chaincode_pb2.ChaincodeID(name="records", version=text, path=text),
    )
    payload = proposal_response_pb2.ProposalResponsePayload(
        proposal_hash=data[:32], extension=action.SerializeToString(deterministic=True)
    )
    expected = proposal_response_pb2.ProposalResponse(
        version=1,
        response=reply,
        payload=payload.SerializeToString(deterministic=True),
        endorsement=proposal_response_pb2.Endorsement(
            endorser=data, signature=data[:70]
        ),
    )
    if interest is not None:
        expected.interest.SetInParent()
        expected.interest.ParseFromString(interest)
    assert made.SerializeToString(deterministic=True) == expected.SerializeToString(
        deterministic=True
    )


@pytest.mark.parametrize("size", [0, 1, 127, 128, 16383, 16384, 2**21 + 3])
def test_transient_free_payload_is_the_input_field_alone(size: int) -> None:
    payload = proposal_pb2.ChaincodeProposalPayload(
        input=b"i" * size, TransientMap={"secret": b"s"}
    )
    expected = proposal_pb2.ChaincodeProposalPayload(input=b"i" * size)
    assert pu.transient_free_payload(payload.SerializeToString()) == (
        expected.SerializeToString(deterministic=True)
    )


def test_proposals_of_one_chaincode_share_the_decoded_chaincode_id() -> None:
    first = parsed_proposal(args=[b"A"])
    second = parsed_proposal(args=[b"B"])
    assert first.chaincode_id is second.chaincode_id
    assert first.chaincode_id == pu.ChaincodeId("records")


def test_a_large_extension_is_parsed_but_not_remembered() -> None:
    """Extensions are read before any check: only short ones are kept."""
    long_name = "c" * 600
    parsed = parsed_proposal(chaincode_name=long_name)
    assert parsed.chaincode_id == pu.ChaincodeId(long_name)
    assert parsed_proposal(chaincode_name=long_name).chaincode_id is not (
        parsed.chaincode_id
    )
