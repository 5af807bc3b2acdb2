"""Golden vectors exchanged with the official Fabric Gateway client (Node, offline).

The client (`@hyperledger/fabric-gateway` 1.11.0, tests/interop/node/golden.js) signs a
proposal, a block-events request and a transaction we assembled, using an identity
made by `medledger crypto generate`; we parse each with our protos and verify the
signatures with our MSP. In the other direction the client's protobuf classes and
Node's crypto decode a proposal we signed and check its tx id and signature.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from common import protoutil
from common.msp import Msp, MspManager, load_signing_identity
from common.msp.identity import SigningIdentity
from network.cryptogen import CryptoLayout, generate_crypto
from network.spec import load_spec
from protos.gateway import gateway_pb2
from protos.ledger.rwset import rwset_pb2
from protos.orderer import ab_pb2

pytestmark = pytest.mark.interop

EXAMPLE = (
    Path(__file__).parents[2] / "network" / "examples" / "hospital-consortium.yaml"
)
CHANNEL = "medical-records"
CHAINCODE = "ehr"
NODE_TIMEOUT_S = 60
JS_MAX_SAFE_INTEGER = 2**53 - 1


@dataclass(frozen=True)
class Consortium:
    layout: CryptoLayout
    msps: MspManager
    clinician: SigningIdentity
    peer: SigningIdentity


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Consortium:
    layout = generate_crypto(load_spec(EXAMPLE), tmp_path_factory.mktemp("crypto"))
    hospital = layout.organization("HospitalAMSP")
    msps = MspManager(
        [Msp.from_folder(org.msp_dir, mspid=org.mspid) for org in layout.organizations]
    )
    return Consortium(
        layout=layout,
        msps=msps,
        clinician=load_signing_identity(
            hospital.user("dr-lee").msp_dir, mspid="HospitalAMSP"
        ),
        peer=load_signing_identity(
            hospital.peer("peer0").msp_dir, mspid="HospitalAMSP"
        ),
    )


def run_node(node_packages: Path, request: dict[str, Any]) -> dict[str, Any]:
    result = subprocess.run(
        ["node", str(node_packages / "golden.js")],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, f"golden.js failed:\n{result.stderr}"
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def node_request(consortium: Consortium, command: str, **fields: Any) -> dict[str, Any]:
    user = consortium.layout.organization("HospitalAMSP").user("dr-lee")
    return {
        "command": command,
        "mspId": "HospitalAMSP",
        "certPem": user.signcert.read_text(),
        "keyPem": user.private_key.read_text(),
        **fields,
    }


@pytest.fixture(scope="module")
def client_vectors(node_packages: Path, consortium: Consortium) -> dict[str, Any]:
    ours = protoutil.create_proposal(
        channel_id=CHANNEL,
        chaincode_name=CHAINCODE,
        args=[b"ReadRecord", b"R-0001"],
        creator=consortium.clinician.serialized,
        transient={"diagnosis": b"secret"},
    )
    signed = protoutil.sign_proposal(ours.proposal_bytes, consortium.clinician.sign)
    request = node_request(
        consortium,
        "client-vectors",
        channel=CHANNEL,
        chaincode=CHAINCODE,
        transactionName="CreateDiagnosis",
        arguments=["R-0001", "P0017"],
        transient={"diagnosis": "influenza A"},
        startBlock=3,
        medledgerSignedProposal=signed.SerializeToString().hex(),
    )
    vectors = run_node(node_packages, request)
    vectors["ourTxId"] = ours.tx_id
    return vectors


def test_node_proposal_parses_and_verifies(
    client_vectors: dict[str, Any], consortium: Consortium
) -> None:
    """The client's signed proposal decodes layer by layer; tx id and signature hold."""
    proposed = gateway_pb2.ProposedTransaction.FromString(
        bytes.fromhex(client_vectors["proposedTransaction"])
    )
    parsed = protoutil.parse_signed_proposal(proposed.proposal)

    assert parsed.channel_id == CHANNEL
    assert parsed.chaincode_id.name == CHAINCODE
    assert parsed.args == (b"CreateDiagnosis", b"R-0001", b"P0017")
    assert dict(parsed.transient_map) == {"diagnosis": b"influenza A"}
    assert parsed.tx_id == proposed.transaction_id == client_vectors["transactionId"]
    creator = parsed.signature_header.creator
    nonce = parsed.signature_header.nonce
    assert len(nonce) == 24
    protoutil.check_tx_id(tx_id=parsed.tx_id, nonce=nonce, creator=creator)

    identity = consortium.msps.deserialize_identity(creator)
    consortium.msps.validate(identity)
    identity.verify(parsed.proposal_bytes, parsed.signature)
    assert identity.serialized == consortium.clinician.serialized


def test_node_block_events_envelope_verifies(
    client_vectors: dict[str, Any], consortium: Consortium
) -> None:
    """The client's signed Deliver seek envelope: header type, positions, signature."""
    seek = protoutil.parse_seek_envelope(
        bytes.fromhex(client_vectors["blockEventsEnvelope"])
    )

    assert seek.envelope.channel_header.channel_id == CHANNEL
    assert seek.start.number == 3
    assert seek.stop.number == JS_MAX_SAFE_INTEGER
    assert seek.behavior == ab_pb2.SeekInfo.BLOCK_UNTIL_READY
    identity = consortium.msps.deserialize_identity(
        seek.envelope.signature_header.creator
    )
    identity.verify(seek.envelope.payload_bytes, seek.envelope.signature)


def test_our_proposal_verifies_in_node(client_vectors: dict[str, Any]) -> None:
    """Fabric's JS protobuf classes decode our proposal; Node's crypto verifies it."""
    seen = client_vectors["medledgerProposal"]

    assert seen["signatureOk"] is True
    assert seen["txIdRuleHolds"] is True
    assert seen["txId"] == client_vectors["ourTxId"]
    assert seen["type"] == 3  # ENDORSER_TRANSACTION
    assert seen["channelId"] == CHANNEL
    assert seen["mspId"] == "HospitalAMSP"
    assert seen["chaincode"] == CHAINCODE
    assert seen["args"] == ["ReadRecord", "R-0001"]
    assert seen["transientKeys"] == ["diagnosis"]


def test_node_signs_transaction_we_assembled(
    node_packages: Path, client_vectors: dict[str, Any], consortium: Consortium
) -> None:
    """A transaction we assemble from the client's proposal and our endorsement is
    accepted by the client's parser, signed by it, and verifies end to end."""
    proposed = gateway_pb2.ProposedTransaction.FromString(
        bytes.fromhex(client_vectors["proposedTransaction"])
    )
    proposal = protoutil.parse_signed_proposal(proposed.proposal)
    response = protoutil.create_proposal_response(
        proposal_hash=protoutil.proposal_hash_of(proposal),
        results=rwset_pb2.TxReadWriteSet().SerializeToString(),
        response=protoutil.ChaincodeResponse(
            status=200, payload=b"record R-0001 created"
        ),
        chaincode_id=protoutil.ChaincodeId(name=CHAINCODE, version="1.0"),
        endorser=consortium.peer.serialized,
        signer=consortium.peer.sign,
    )
    payload = protoutil.create_transaction_envelope(
        proposal=proposal, responses=[response]
    )
    prepared = gateway_pb2.PreparedTransaction(transaction_id=proposal.tx_id)
    prepared.envelope.payload = payload

    signed = run_node(
        node_packages,
        node_request(
            consortium,
            "sign-transaction",
            preparedTransaction=prepared.SerializeToString().hex(),
        ),
    )

    assert signed["transactionId"] == proposal.tx_id
    assert signed["result"] == "record R-0001 created"
    returned = gateway_pb2.PreparedTransaction.FromString(
        bytes.fromhex(signed["preparedTransaction"])
    )
    assert returned.envelope.payload == payload
    transaction = protoutil.parse_transaction(returned.envelope)
    assert transaction.envelope.channel_header.tx_id == proposal.tx_id
    client = consortium.msps.deserialize_identity(
        transaction.envelope.signature_header.creator
    )
    client.verify(transaction.envelope.payload_bytes, transaction.envelope.signature)
    (endorsement,) = transaction.endorsements
    endorser = consortium.msps.deserialize_identity(endorsement.endorser)
    endorser.verify(
        protoutil.endorsement_message(
            payload=transaction.proposal_response_payload.raw,
            endorser=endorsement.endorser,
        ),
        endorsement.signature,
    )
    assert transaction.proposal_response_payload.raw == response.payload
    assert protoutil.transaction_proposal_hash(
        transaction
    ) == protoutil.proposal_hash_of(proposal)
