"""The endorser's proposal checks in Fabric's order, one changed field per case.

Method: a valid signed proposal by a Hospital A client, judged by `check_proposal`
against the channel's MSPs from the example's genesis block; each invalid case
changes exactly one field and expects the error (and message) of the first rule it
breaks. No sockets, no chaincode.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from common.channelconfig import ChannelConfig
from common.msp import MspManager, SigningIdentity
from common.protoutil import (
    compute_tx_id,
    new_nonce,
    parse_signed_proposal,
    serialize_identity,
)
from peer.endorser import check_proposal, error_response
from peer.errors import AccessDenied, MalformedProposal, ProposalRejected
from protos.common import common_pb2
from protos.peer import chaincode_pb2, proposal_pb2
from tests.support.peer import CHANNEL, HOSPITAL_A, HOSPITAL_B, build_peer_material


@dataclass(frozen=True)
class Fields:
    """What a test proposal is made of; each case replaces one field."""

    signer: SigningIdentity
    creator: bytes
    nonce: bytes
    header_type: int = common_pb2.ENDORSER_TRANSACTION
    epoch: int = 0
    tx_id: str | None = None
    sign_with: SigningIdentity | None = None
    unsigned: bool = False


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[MspManager, Fields, Fields]:
    material = build_peer_material(tmp_path_factory.mktemp("checks"))
    msps = ChannelConfig.from_block(material.genesis).msp_manager
    client = material.user(HOSPITAL_A, "dr-lee")
    other = material.user(HOSPITAL_B, "dr-garcia")
    valid = Fields(signer=client, creator=client.serialized, nonce=new_nonce())
    return msps, valid, replace(valid, sign_with=other)


def build(fields: Fields) -> proposal_pb2.SignedProposal:
    tx_id = fields.tx_id
    if tx_id is None:
        tx_id = compute_tx_id(nonce=fields.nonce, creator=fields.creator)
    extension = proposal_pb2.ChaincodeHeaderExtension(
        chaincode_id=chaincode_pb2.ChaincodeID(name="asset")
    ).SerializeToString()
    channel_header = common_pb2.ChannelHeader(
        type=fields.header_type,
        channel_id=CHANNEL,
        tx_id=tx_id,
        epoch=fields.epoch,
        extension=extension,
    )
    channel_header.timestamp.GetCurrentTime()
    header = common_pb2.Header(
        channel_header=channel_header.SerializeToString(),
        signature_header=common_pb2.SignatureHeader(
            creator=fields.creator, nonce=fields.nonce
        ).SerializeToString(),
    )
    invocation = chaincode_pb2.ChaincodeInvocationSpec(
        chaincode_spec=chaincode_pb2.ChaincodeSpec(
            chaincode_id=chaincode_pb2.ChaincodeID(name="asset"),
            input=chaincode_pb2.ChaincodeInput(args=[b"ReadAsset", b"a1"]),
        )
    )
    payload = proposal_pb2.ChaincodeProposalPayload(
        input=invocation.SerializeToString()
    )
    proposal_bytes = proposal_pb2.Proposal(
        header=header.SerializeToString(), payload=payload.SerializeToString()
    ).SerializeToString()
    if fields.unsigned:
        return proposal_pb2.SignedProposal(proposal_bytes=proposal_bytes)
    signer = fields.sign_with or fields.signer
    return proposal_pb2.SignedProposal(
        proposal_bytes=proposal_bytes, signature=signer.sign(proposal_bytes)
    )


def run_check(
    msps: MspManager,
    fields: Fields,
    *,
    valid: bool,
    error: type[ProposalRejected] = MalformedProposal,
    message: str = "",
) -> None:
    proposal = parse_signed_proposal(build(fields))
    if valid:
        creator = check_proposal(proposal, msps)
        assert creator.serialized == fields.creator
        return
    with pytest.raises(error) as raised:
        check_proposal(proposal, msps)
    assert message in str(raised.value)


def test_the_valid_proposal_passes(setup: tuple[MspManager, Fields, Fields]) -> None:
    msps, valid, _ = setup
    run_check(msps, valid, valid=True)


def test_a_config_header_type_is_tolerated(
    setup: tuple[MspManager, Fields, Fields],
) -> None:
    msps, valid, _ = setup
    run_check(msps, replace(valid, header_type=common_pb2.CONFIG), valid=True)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"header_type": common_pb2.MESSAGE}, "invalid header type 0"),
        ({"header_type": common_pb2.DELIVER_SEEK_INFO}, "invalid header type 5"),
        ({"epoch": 1}, "epoch is non-zero"),
        ({"nonce": b""}, "nonce is empty"),
        ({"creator": b""}, "creator is empty"),
        ({"tx_id": "0" * 64}, "incorrectly computed txid '" + "0" * 64),
        ({"unsigned": True}, "empty signature bytes"),
    ],
)
def test_malformed_fields(
    setup: tuple[MspManager, Fields, Fields], change: dict[str, object], message: str
) -> None:
    msps, valid, _ = setup
    run_check(msps, replace(valid, **change), valid=False, message=message)  # type: ignore[arg-type]


def test_an_upper_case_tx_id_is_not_the_tx_id(
    setup: tuple[MspManager, Fields, Fields],
) -> None:
    msps, valid, _ = setup
    upper = compute_tx_id(nonce=valid.nonce, creator=valid.creator).upper()
    run_check(msps, replace(valid, tx_id=upper), valid=False, message="incorrectly")


def test_a_signature_by_another_key_is_denied(
    setup: tuple[MspManager, Fields, Fields],
) -> None:
    msps, _, forged = setup
    run_check(
        msps,
        forged,
        valid=False,
        error=AccessDenied,
        message=f"access denied: channel [{CHANNEL}] creator org [{HOSPITAL_A}]",
    )


@pytest.mark.parametrize(
    "creator",
    [
        serialize_identity("NoSuchMSP", b"-----BEGIN CERTIFICATE-----\n"),
        serialize_identity(HOSPITAL_A, b"not a certificate"),
        b"\xff\xfe not protobuf",
    ],
)
def test_an_unknown_or_malformed_creator_is_denied(
    setup: tuple[MspManager, Fields, Fields], creator: bytes
) -> None:
    msps, valid, _ = setup
    run_check(
        msps,
        replace(valid, creator=creator),
        valid=False,
        error=AccessDenied,
        message="creator org unknown, creator is malformed",
    )


def test_a_certificate_of_another_msp_is_denied(
    setup: tuple[MspManager, Fields, Fields],
) -> None:
    """Hospital B's certificate presented as Hospital A's does not chain."""
    msps, valid, forged = setup
    assert forged.sign_with is not None
    pem = forged.sign_with.identity.certificate.pem
    creator = serialize_identity(HOSPITAL_A, pem)
    run_check(
        msps,
        replace(valid, creator=creator, signer=forged.sign_with, sign_with=None),
        valid=False,
        error=AccessDenied,
        message=f"creator org [{HOSPITAL_A}]",
    )


def test_the_error_response_is_fabrics() -> None:
    response = error_response("channel 'x' not found")
    assert response.response.status == 500
    assert response.response.message == "channel 'x' not found"
    assert not response.payload
    assert not response.HasField("endorsement")
