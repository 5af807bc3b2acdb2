"""The public surface of `gateway.client`, checkpointers and offline signing (no server)."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

import gateway.client
from common.errors import ConfigError
from common.protoutil import parse_proposal
from gateway.client import (
    CommitError,
    FileCheckpointer,
    Gateway,
    InMemoryCheckpointer,
    Status,
    digest,
    identity_from_msp,
    signer_from_msp,
)
from protos.gateway import gateway_pb2
from tests.support.peer import HOSPITAL_A, PeerMaterial

PUBLIC = {
    "CallTimeouts",
    "ChaincodeEvent",
    "Checkpoint",
    "Checkpointer",
    "ClientError",
    "Commit",
    "CommitError",
    "CommitStatusError",
    "Contract",
    "EndorseError",
    "ErrorDetail",
    "FileCheckpointer",
    "Gateway",
    "GatewayError",
    "Identity",
    "InMemoryCheckpointer",
    "Network",
    "Proposal",
    "Signer",
    "Status",
    "SubmitError",
    "SubmittedTransaction",
    "Transaction",
    "digest",
    "identity_from_msp",
    "signer_from_msp",
}


def test_the_public_api_is_pinned() -> None:
    assert set(gateway.client.__all__) == PUBLIC
    for name in PUBLIC:
        assert hasattr(gateway.client, name)


def test_checkpointers_move_by_block_and_by_transaction(tmp_path: Path) -> None:
    memory = InMemoryCheckpointer()
    assert (memory.block_number, memory.transaction_id) == (None, None)
    memory.checkpoint_transaction(4, "tx-a")
    assert (memory.block_number, memory.transaction_id) == (4, "tx-a")
    memory.checkpoint_block(4)
    assert (memory.block_number, memory.transaction_id) == (5, None)

    path = tmp_path / "checkpoint.json"
    saved = FileCheckpointer(path)
    saved.checkpoint_transaction(9, "tx-b")
    assert json.loads(path.read_text()) == {"blockNumber": 9, "transactionId": "tx-b"}
    reloaded = FileCheckpointer(path)
    assert (reloaded.block_number, reloaded.transaction_id) == (9, "tx-b")


def test_a_damaged_checkpoint_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.json"
    path.write_text('{"blockNumber": "nine"}')
    with pytest.raises(ConfigError, match="blockNumber"):
        FileCheckpointer(path)


def test_status_and_commit_error_describe_the_code() -> None:
    status = Status("tx", 11, 7)
    assert (status.successful, status.code_name) == (False, "MVCC_READ_CONFLICT")
    error = CommitError("tx", 11)
    assert (
        str(error)
        == "Transaction tx failed to commit with status code 11 (MVCC_READ_CONFLICT)"
    )


async def test_offline_signing_hands_out_bytes_and_digests(
    material: PeerMaterial,
) -> None:
    msp = material.orderer.user(HOSPITAL_A, "dr-lee").msp_dir
    identity = identity_from_msp(msp, HOSPITAL_A)
    signer = signer_from_msp(msp, HOSPITAL_A)
    async with Gateway.connect("127.0.0.1:1", identity) as client:
        contract = client.network("medical-records").contract("asset", "AssetTransfer")
        unsigned = contract.new_proposal(
            "ReadAsset", "a1", transient={"k": b"v"}, endorsing_orgs=["HospitalBMSP"]
        )
        assert unsigned.digest == digest(unsigned.message)
        proposed = gateway_pb2.ProposedTransaction.FromString(unsigned.to_bytes())
        assert proposed.transaction_id == unsigned.transaction_id
        assert list(proposed.endorsing_organizations) == ["HospitalBMSP"]
        parsed = parse_proposal(proposed.proposal.proposal_bytes)
        assert parsed.args == (b"AssetTransfer:ReadAsset", b"a1")
        assert dict(parsed.transient_map) == {"k": b"v"}
        assert parsed.creator == identity.serialized

        signed = client.new_signed_proposal(
            unsigned.to_bytes(), signer(unsigned.message)
        )
        assert signed.transaction_id == unsigned.transaction_id
        assert signed.channel_id == "medical-records"
        with pytest.raises(ValueError, match="no signer"):
            await unsigned.evaluate()


async def test_an_unreachable_gateway_is_a_gateway_error(
    material: PeerMaterial,
) -> None:
    msp = material.orderer.user(HOSPITAL_A, "dr-lee").msp_dir
    async with Gateway.connect(
        "127.0.0.1:1",
        identity_from_msp(msp, HOSPITAL_A),
        signer_from_msp(msp, HOSPITAL_A),
    ) as client:
        contract = client.network("medical-records").contract("asset")
        with pytest.raises(gateway.client.GatewayError) as raised:
            await contract.evaluate("ReadAsset", "a1")
    assert raised.value.code is grpc.StatusCode.UNAVAILABLE
    assert raised.value.transaction_id
